package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// Space is the data folder's free-space watermark as ingest uses it;
// diskspace.Watermark implements it.
type Space interface {
	// Low reports whether free space is below the watermark, and why.
	Low() (bool, string)
	// LowNow is Low read from the filesystem now, without a cache.
	LowNow() bool
	// FreeBytes reads the free space now.
	FreeBytes() uint64
}

// waitingSuffix names the report that tells a partner a file waits for
// storage space: reports/<file>.waiting.txt, removed once the file is read.
const waitingSuffix = ".waiting.txt"

// spaceRetry is how often a paused ingest looks at the disk again.
const spaceRetry = 250 * time.Millisecond

// spaceReturned is how much free space must come back after an ingest
// failed on a full disk before the file is tried again: without more room
// than it had, it would fail the same way.
const spaceReturned = 4 << 20

// errStorageLow ends the read of a file when free space falls below the
// watermark while it is read, before the disk is full.
var errStorageLow = errors.New("storage space fell below the watermark while the file was read")

// errPaused marks an ingest stopped for lack of storage: the file is not
// rejected, it waits in inbox/ and is read again when space returns.
var errPaused = errors.New("ingest paused for storage space")

// diskPause is the ingester's state while storage is short: files wait in
// the queue (in their order) instead of being read, and the remains of an
// ingest cut short are removed before the next file is.
type diskPause struct {
	space Space
	// gate: workers hold its read side while they ingest a file, the
	// cleanup of remains its write side (removeRemains).
	gate sync.RWMutex

	mu sync.Mutex
	// cleanup: remains of an interrupted ingest (a crash before start, or a
	// failed abort) must be removed before any file is read.
	cleanup    bool
	cleanupErr error
	// after a failure on a full disk: the free space then; files wait until
	// more has returned (failedAt is when, for a nil Space).
	heldFree uint64
	failedAt time.Time
	held     bool
	// report: the waiting report still to write (a full disk refused it).
	report func() error
}

// startupCleanup removes what an ingest cut short by a crash left behind.
// When that cannot run (a full disk), dropgate starts anyway: files wait,
// and the cleanup is retried before the next file is read.
func (in *Ingester) startupCleanup(ctx context.Context) {
	jobs, files, err := in.st.AbandonUnclaimedIngests(ctx, in.now())
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		in.pause.mu.Lock()
		in.pause.cleanupErr = err
		in.pause.mu.Unlock()
		in.log.Warn("cannot clean up interrupted ingests yet; files in inboxes wait until this succeeds, retried as space returns", "err", err)
		return
	}
	in.pause.mu.Lock()
	in.pause.cleanup = false
	in.pause.mu.Unlock()
	if jobs > 0 || files > 0 {
		in.log.Warn("removed the remains of ingests interrupted by a crash; their files are read again", "jobs", jobs, "files", files)
	}
}

// Degraded says why ingest is not taking files, or "" when it is.
func (in *Ingester) Degraded() string {
	in.pause.mu.Lock()
	defer in.pause.mu.Unlock()
	switch {
	case in.pause.cleanup && in.pause.cleanupErr == nil:
		return "ingest is starting: checking for remains of interrupted ingests"
	case in.pause.cleanup:
		return fmt.Sprintf("remains of an interrupted ingest cannot be removed yet (%v); files in inboxes wait", in.pause.cleanupErr)
	case in.pause.held:
		return "an ingest stopped for lack of storage space; files in inboxes wait until space returns"
	}
	return ""
}

// pausedForSpace reports whether files must wait: the remains of an
// interrupted ingest cannot be removed yet, free space is below the
// watermark, or it has not come back since an ingest failed for want of
// it. Every ingest worker asks it between files.
func (in *Ingester) pausedForSpace(ctx context.Context) bool {
	ps := &in.pause
	in.retryWaitingReport()
	if !in.removeRemains(ctx) {
		return true
	}
	if ps.space != nil {
		if low, _ := ps.space.Low(); low {
			return true
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.held {
		if ps.space != nil && ps.space.FreeBytes() < ps.heldFree+spaceReturned ||
			ps.space == nil && time.Since(ps.failedAt) < time.Minute {
			return true
		}
		ps.held, ps.report = false, nil
		in.log.Info("storage space returned; reading the files that waited")
	}
	return false
}

// removeRemains removes what an ingest cut short left behind (a crash
// before the start, or a paused ingest whose own rollback failed on the
// full disk), and reports whether nothing is left to remove. The cleanup
// removes every ingesting job, so it takes the gate's write side: no
// other worker is in the middle of a file meanwhile.
func (in *Ingester) removeRemains(ctx context.Context) bool {
	ps := &in.pause
	ps.mu.Lock()
	need := ps.cleanup
	ps.mu.Unlock()
	if !need {
		return true
	}
	ps.gate.Lock()
	defer ps.gate.Unlock()
	ps.mu.Lock()
	need = ps.cleanup // another worker may have done it meanwhile
	ps.mu.Unlock()
	if !need {
		return true
	}
	jobs, files, err := in.st.AbandonUnclaimedIngests(ctx, in.now())
	if err != nil {
		ps.mu.Lock()
		ps.cleanupErr = err
		ps.mu.Unlock()
		return false
	}
	in.st.TruncateWAL(ctx)
	ps.mu.Lock()
	ps.cleanup, ps.cleanupErr = false, nil
	ps.mu.Unlock()
	if jobs > 0 || files > 0 {
		in.log.Info("removed the remains of interrupted ingests; files are read again", "jobs", jobs, "files", files)
	}
	return true
}

// watchSpace returns a context for reading one file that is cancelled,
// with errStorageLow as its cause, when free space falls below the
// watermark meanwhile: the ingest stops while there is still room to roll
// it back, rather than when the disk is full. stop releases it.
func (in *Ingester) watchSpace(ctx context.Context) (context.Context, func()) {
	if in.pause.space == nil {
		return ctx, func() {}
	}
	c, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		// A statfs costs about a microsecond; at ingest speed 20 ms is a
		// megabyte or two of database pages.
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-c.Done():
				return
			case <-t.C:
				if in.pause.space.LowNow() {
					cancel(errStorageLow)
					return
				}
			}
		}
	}()
	return c, func() { close(done); cancel(nil) }
}

// storageFailure returns errPaused (wrapping the cause) when a file's read
// failed because storage ran short, and nil for any other failure.
func storageFailure(readCtx context.Context, err error) error {
	if cause := context.Cause(readCtx); errors.Is(cause, errStorageLow) {
		return fmt.Errorf("%w: %w", errPaused, cause)
	}
	if store.IsDiskFull(err) {
		return fmt.Errorf("%w: %w", errPaused, err)
	}
	return nil
}

// pauseFile handles a file whose ingest stopped for lack of storage: what
// was written for it is removed (or left to the cleanup before the next
// file, when even that fails), the WAL is truncated so its space returns,
// the partner learns the file waits, and files wait until space returns.
// It reports whether err was such a failure: the caller then keeps the
// file queued instead of finishing it.
func (in *Ingester) pauseFile(ctx context.Context, p *partner, it workItem, err error) bool {
	if !errors.Is(err, errPaused) && !store.IsDiskFull(err) {
		return false
	}
	log := in.log.With("partner", it.partner, "file", it.rel)
	ps := &in.pause
	// The file's job was rolled back as its read returned; if the full
	// disk refused that too, the remains are removed before the next
	// file is read, when no other worker is inside one (removeRemains).
	ps.mu.Lock()
	ps.cleanup = true
	ps.mu.Unlock()
	in.st.TruncateWAL(ctx)
	var free uint64
	if ps.space != nil {
		free = ps.space.FreeBytes()
	}
	ps.mu.Lock()
	ps.held, ps.failedAt, ps.heldFree = true, time.Now(), free
	ps.report = func() error { return writeWaitingReport(reportPath(p, it.rel, waitingSuffix), it.rel, in.now()) }
	ps.mu.Unlock()
	log.Warn("file paused: the server ran out of storage space while reading it; it stays in inbox/ and is read again when space returns", "err", err)
	if !in.retryWaitingReport() {
		log.Warn("cannot write the waiting report yet (no space); retried while the file waits")
	}
	return true
}

// retryWaitingReport writes the waiting report of a paused file if it is
// still to write, and reports whether none is left to write.
func (in *Ingester) retryWaitingReport() bool {
	ps := &in.pause
	ps.mu.Lock()
	write := ps.report
	ps.mu.Unlock()
	if write == nil {
		return true
	}
	if err := write(); err != nil {
		return false
	}
	ps.mu.Lock()
	ps.report = nil
	ps.mu.Unlock()
	return true
}

// fileTaken removes the waiting report of a file that was read at last.
func (in *Ingester) fileTaken(p *partner, it workItem) {
	removeReport(reportPath(p, it.rel, waitingSuffix))
}

// writeWaitingReport tells the partner the file waits for storage space.
func writeWaitingReport(path, rel string, now time.Time) error {
	return writeAtomic(path, func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "%s: the server ran out of storage space while reading %s (%s).\n"+
			"The file was not rejected and nothing from it was queued. It stays in inbox/ and will be taken automatically once space returns; "+
			"you do not need to upload it again. This report is removed when the file is taken.\n",
			now.UTC().Format(time.RFC3339), rel, "paused, will be retried")
		return err
	})
}
