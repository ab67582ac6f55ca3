package sender

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dropgate/dropgate/store"
)

// journal is the sender's delivery log: every outcome is appended to it,
// with one write (into the segment's shared mapping, journal_map.go, or a
// pwrite), before the worker that produced it starts its next provider
// call. That write is what makes the outcome durable; the database
// learns it later, for many outcomes in one transaction. A SQLite commit
// per outcome (about 40 µs here, most of it the WAL write and -shm locks)
// capped the sender at a third of what the providers could take; a write
// to a file is a few microseconds.
//
// Like the outbox and the database at synchronous=NORMAL, a returned write
// survives a crash of the process (the kernel has it), not a power cut; a
// power cut can only make a provider see a message again, under the same
// idempotency key.
//
// The log is a folder of segments, <n>.log, one JSON object per line. The
// sender rotates to a new segment whenever it hands what was logged to the
// database, and removes the old one once that transaction committed; the
// segments left at start are what a crash kept from the database, and are
// applied before anything is claimed. Applying an outcome twice is
// harmless: an outcome applies only to the claim (message and attempt) it
// belongs to, and only while that claim is still open.
//
// Not safe for concurrent use; the committer serialises access.
type journal struct {
	dir  string
	next uint64   // number of the next segment to create
	f    *os.File // the open segment, nil until the first append after a rotation
	buf  []byte
	// m is the open segment mapped into memory (journal_map.go), nil when
	// it is written with pwrite; used is how much of the segment is
	// written either way.
	m      []byte
	used   int64
	noMap  bool // a mapping failed once: the segments are written from then on
	mapErr error
}

// journalRecord is one line of a segment.
type journalRecord struct {
	ID         int64  `json:"id"`
	JobID      int64  `json:"job"`
	Attempt    int    `json:"attempt"`
	Kind       string `json:"kind"`
	At         int64  `json:"at"` // Unix ms
	Next       int64  `json:"next,omitempty"`
	ProviderID string `json:"provider_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

const segmentSuffix = ".log"

// openJournal opens the log in dir, creating the folder. Segments already
// there are left for segments and replay.
func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create delivery log folder: %w", err)
	}
	j := &journal{dir: dir, next: 1}
	segs, err := j.segments()
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		last, _ := segmentNumber(segs[len(segs)-1])
		j.next = last + 1
	}
	return j, nil
}

// segments returns the paths of the segments on disk, oldest first.
func (j *journal) segments() ([]string, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read delivery log folder: %w", err)
	}
	type seg struct {
		n    uint64
		path string
	}
	var segs []seg
	for _, e := range entries {
		if n, ok := segmentNumber(e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, seg{n, filepath.Join(j.dir, e.Name())})
		}
	}
	slices.SortFunc(segs, func(a, b seg) int { return cmp.Compare(a.n, b.n) })
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.path
	}
	return out, nil
}

// segmentNumber parses "<n>.log" (or a path ending in it).
func segmentNumber(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(filepath.Base(name), segmentSuffix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// append writes outcomes to the open segment in one write: a copy into
// its mapping, or a pwrite when it is not mapped.
func (j *journal) append(outs []store.Outcome) error {
	if j.f == nil {
		path := filepath.Join(j.dir, fmt.Sprintf("%012d%s", j.next, segmentSuffix))
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return fmt.Errorf("cannot create delivery log segment: %w", err)
		}
		j.f, j.used = f, 0
		j.next++
		if !j.noMap {
			j.mapFailed(j.mapSegment(segmentMapSize))
		}
	}
	j.buf = j.buf[:0]
	for i := range outs {
		j.buf = appendRecord(j.buf, &outs[i])
	}
	if j.m != nil && j.used+int64(len(j.buf)) > int64(len(j.m)) {
		j.mapFailed(j.mapSegment(2 * (int64(len(j.m)) + int64(len(j.buf)))))
	}
	if j.m != nil {
		copy(j.m[j.used:], j.buf)
		j.used += int64(len(j.buf))
		return nil
	}
	if _, err := j.f.WriteAt(j.buf, j.used); err != nil {
		return fmt.Errorf("cannot write delivery log %s: %w", j.f.Name(), err)
	}
	j.used += int64(len(j.buf))
	return nil
}

// appendRecord appends o as one line of JSON, journalRecord's encoding,
// without encoding/json's reflection (the sender writes one per message).
func appendRecord(b []byte, o *store.Outcome) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, o.ID, 10)
	b = append(b, `,"job":`...)
	b = strconv.AppendInt(b, o.JobID, 10)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(o.Attempt), 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, o.Kind)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, o.At.UnixMilli(), 10)
	if !o.NextAttemptAt.IsZero() {
		b = append(b, `,"next":`...)
		b = strconv.AppendInt(b, o.NextAttemptAt.UnixMilli(), 10)
	}
	if o.ProviderID != "" {
		b = append(b, `,"provider_id":`...)
		b = appendJSONString(b, o.ProviderID)
	}
	if o.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, o.Error)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// (and so the templates' json function) writes it: as is, quoted, when no
// byte of it needs escaping (phone numbers, ids, most bodies), else by
// encoding/json itself, which escapes <, > and & too.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// rotate closes the open segment and returns its path ("" when nothing was
// appended since the last rotation); the next append starts a new one.
func (j *journal) rotate() (string, error) {
	if j.f == nil {
		return "", nil
	}
	path := j.f.Name()
	err := j.unmap()
	if e := j.f.Close(); err == nil {
		err = e
	}
	j.f = nil
	if err != nil {
		return path, fmt.Errorf("cannot close delivery log segment: %w", err)
	}
	return path, nil
}

// close closes the open segment, if any.
func (j *journal) close() error {
	_, err := j.rotate()
	return err
}

// removeSegments deletes segments whose outcomes the database has.
func removeSegments(paths []string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readSegment returns the outcomes of one segment. Lines that do not parse
// at the end of a segment are a write cut short by a crash of the machine
// (a power cut can leave a partial line or zeroed blocks): the worker never
// went on past such a write, so they are skipped. A bad line followed by a
// good one is damage, and an error.
func readSegment(path string) ([]store.Outcome, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read delivery log segment: %w", err)
	}
	var outs []store.Outcome
	var bad error
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r journalRecord
		err := json.Unmarshal(line, &r)
		if err == nil && (r.ID == 0 || r.Kind == "") {
			err = errors.New("missing id or kind")
		}
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("%s:%d: bad delivery log record: %w", path, n+1, err)
			}
			continue
		}
		if bad != nil {
			return nil, bad
		}
		o := store.Outcome{ID: r.ID, JobID: r.JobID, Attempt: r.Attempt, Kind: r.Kind, At: time.UnixMilli(r.At),
			ProviderID: r.ProviderID, Error: r.Error}
		if r.Next != 0 {
			o.NextAttemptAt = time.UnixMilli(r.Next)
		}
		outs = append(outs, o)
	}
	return outs, nil
}
