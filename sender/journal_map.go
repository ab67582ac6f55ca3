package sender

import (
	"errors"
	"fmt"
	"syscall"
)

// The open segment of the delivery log is mapped into memory and an
// outcome is copied there: a write to a shared file mapping is in the
// kernel's page cache as soon as it is made, as a returned write(2) is,
// so it survives a crash of the process just the same, without a system
// call per message (about 3-6 µs of a message's CPU, sender/BENCHMARKS.md,
// session 8). The segment's blocks are allocated (fallocate) before they
// are mapped: a mapped page the filesystem cannot store is a SIGBUS, not
// an error, so a full disk must fail the allocation instead, and the
// segment is then written with pwrite as before, whose error the
// committer handles (the database takes the outcomes). A filesystem that
// cannot allocate or map does the same. A crash leaves the segment at its
// allocated size, zeros after the last outcome: readSegment skips them as
// it skips a torn tail.

// segmentMapSize is the first allocation of a mapped segment, grown by
// doubling: a segment holds the outcomes of one apply, at most a few
// hundred lines of about 100 bytes.
const segmentMapSize = 128 << 10

// mapSegment allocates the open segment to size bytes and maps it, in
// place of any smaller mapping.
func (j *journal) mapSegment(size int64) error {
	if err := j.unmapKeep(); err != nil {
		return err
	}
	fd := int(j.f.Fd())
	if err := syscall.Fallocate(fd, 0, 0, size); err != nil {
		return fmt.Errorf("cannot allocate delivery log segment: %w", err)
	}
	m, err := syscall.Mmap(fd, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("cannot map delivery log segment: %w", err)
	}
	j.m = m
	return nil
}

// mapFailed switches the journal to pwrite for good when err is not nil:
// the open segment is cut back to what it holds, and later ones are not
// mapped.
func (j *journal) mapFailed(err error) {
	if err == nil {
		return
	}
	j.noMap, j.mapErr = true, err
	if e := j.unmap(); e != nil {
		j.mapErr = errors.Join(err, e)
	}
}

// unmapKeep unmaps the open segment, leaving its size.
func (j *journal) unmapKeep() error {
	if j.m == nil {
		return nil
	}
	err := syscall.Munmap(j.m)
	j.m = nil
	if err != nil {
		return fmt.Errorf("cannot unmap delivery log segment: %w", err)
	}
	return nil
}

// unmap unmaps the open segment and cuts it back to the outcomes it
// holds (the zeros after them would be skipped by a replay anyway).
func (j *journal) unmap() error {
	err := j.unmapKeep()
	if st, e := j.f.Stat(); e == nil && st.Size() > j.used {
		if e := j.f.Truncate(j.used); e != nil {
			err = errors.Join(err, fmt.Errorf("cannot cut delivery log segment: %w", e))
		}
	}
	return err
}
