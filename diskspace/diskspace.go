// Package diskspace watches the free space of the filesystem that holds
// dropgate's data folder against a watermark ([storage] min_free), as
// Postfix's queue_minfree does for a mail queue: below the watermark new
// work (uploads, API sends, ingests) is refused or waits with a temporary
// answer, instead of being accepted and then lost half-written, and it is
// taken again by itself once space returns.
//
// A Watermark reads the filesystem with statfs at most about once a second
// (each caller in between gets the cached figure), so the upload and send
// paths can ask it every time.
package diskspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// Usage is what statfs says about a filesystem, in bytes.
type Usage struct {
	// Free is what an unprivileged process may still write (f_bavail).
	Free uint64
	// Total is the filesystem's size.
	Total uint64
}

// StatFunc reads the usage of the filesystem holding dir.
type StatFunc func(dir string) (Usage, error)

// Statfs is the real StatFunc.
func Statfs(dir string) (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Usage{}, fmt.Errorf("cannot read free space of %s: %w", dir, err)
	}
	return Usage{Free: st.Bavail * uint64(st.Bsize), Total: st.Blocks * uint64(st.Bsize)}, nil
}

// Options configure a Watermark.
type Options struct {
	// Dir is a folder on the filesystem to watch (the data folder).
	Dir string
	// MinFreeBytes and MinFreePercent are the watermark; when both are set
	// the smaller applies, when both are zero there is none (config's
	// StorageConfig.MinFreeLimits).
	MinFreeBytes   int64
	MinFreePercent float64
	// Stat reads the filesystem; nil means Statfs. Tests inject a fake.
	Stat StatFunc
	// MaxAge is how long a reading is reused (default 1 s).
	MaxAge time.Duration
	// Interval is how often Run reads the filesystem (default 1 s), so a
	// change is noticed, logged and announced even when nobody asks.
	Interval time.Duration
	// Logger receives one WARN when space runs low and one INFO when it
	// returns; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Status is one reading of the filesystem against the watermark.
type Status struct {
	// Low is true while free space is below MinFree.
	Low bool
	// Reason says so in words, for people (empty when not Low).
	Reason string
	// Free, Total and MinFree are in bytes.
	Free, Total, MinFree uint64
}

// LowError is returned by Check and Room while space is below the
// watermark; its message is the Status's reason.
type LowError struct{ Status Status }

func (e *LowError) Error() string { return e.Status.Reason }

// ErrLow matches every *LowError with errors.Is.
var ErrLow = errors.New("storage space is below the watermark")

// Is makes errors.Is(err, ErrLow) true.
func (e *LowError) Is(target error) bool { return target == ErrLow }

// Watermark is the free-space guard of one filesystem. It is safe for
// concurrent use.
type Watermark struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	read    time.Time // when st was read
	st      Status
	known   bool // st holds a reading
	statErr error
	changed chan struct{} // closed at the next change of Low
}

// New returns a Watermark for opts.Dir and reads it once.
func New(opts Options) (*Watermark, error) {
	if opts.Dir == "" {
		return nil, errors.New("diskspace: Dir is required")
	}
	if opts.MinFreeBytes < 0 || opts.MinFreePercent < 0 || opts.MinFreePercent >= 100 {
		return nil, fmt.Errorf("diskspace: bad watermark %d bytes, %g%%", opts.MinFreeBytes, opts.MinFreePercent)
	}
	if opts.Stat == nil {
		opts.Stat = Statfs
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watermark{opts: opts, log: logger.With("component", "storage"), changed: make(chan struct{})}
	if _, err := opts.Stat(opts.Dir); err != nil {
		return nil, err
	}
	w.Refresh()
	return w, nil
}

// Run reads the filesystem every Interval until ctx ends, so that a change
// is logged and announced (Changed) without waiting for a caller.
func (w *Watermark) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.Refresh()
		}
	}
}

// Status returns the latest reading, reading the filesystem again when the
// cached one is older than MaxAge.
func (w *Watermark) Status() Status {
	w.mu.Lock()
	fresh := w.known && w.opts.Now().Sub(w.read) < w.opts.MaxAge
	st := w.st
	w.mu.Unlock()
	if fresh {
		return st
	}
	return w.Refresh()
}

// Low reports whether free space is below the watermark, and why.
func (w *Watermark) Low() (bool, string) {
	st := w.Status()
	return st.Low, st.Reason
}

// Check returns a *LowError while free space is below the watermark.
func (w *Watermark) Check() error {
	if st := w.Status(); st.Low {
		return &LowError{Status: st}
	}
	return nil
}

// Room returns how many bytes may still be written before free space
// reaches the watermark, or a *LowError when it already has. An upload
// that would need more is refused as early as its protocol allows.
func (w *Watermark) Room() (int64, error) {
	st := w.Status()
	if st.Low {
		return 0, &LowError{Status: st}
	}
	return int64(min(st.Free-st.MinFree, 1<<62)), nil
}

// Changed returns a channel that is closed the next time Low changes.
func (w *Watermark) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Refresh reads the filesystem now, logs a change of state once (WARN when
// space runs low, INFO when it returns) and announces it to Changed.
func (w *Watermark) Refresh() Status {
	u, err := w.opts.Stat(w.opts.Dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.read = w.opts.Now()
	if err != nil {
		// Keep the last state: a failing statfs is no reason to stop or
		// to start refusing work. Log it once per run of failures.
		if w.statErr == nil {
			w.log.Error("cannot read the data folder's free space; keeping the last reading", "err", err)
		}
		w.statErr = err
		w.known = true
		return w.st
	}
	w.statErr = nil
	st := w.evaluate(u)
	if w.known && st.Low != w.st.Low {
		if st.Low {
			w.log.Warn("storage space low: new uploads and API sends are refused, files in inboxes wait", "reason", st.Reason,
				"free_bytes", st.Free, "min_free_bytes", st.MinFree)
		} else {
			w.log.Info("storage space back above the watermark: uploads, sends and waiting files resume",
				"free_bytes", st.Free, "min_free_bytes", st.MinFree)
		}
		close(w.changed)
		w.changed = make(chan struct{})
	} else if !w.known && st.Low {
		w.log.Warn("storage space low at start: new uploads and API sends are refused, files in inboxes wait", "reason", st.Reason,
			"free_bytes", st.Free, "min_free_bytes", st.MinFree)
	}
	w.st, w.known = st, true
	return st
}

// evaluate compares a reading with the watermark.
func (w *Watermark) evaluate(u Usage) Status {
	st := Status{Free: u.Free, Total: u.Total, MinFree: MinFree(u.Total, w.opts.MinFreeBytes, w.opts.MinFreePercent)}
	if st.Free < st.MinFree {
		st.Low = true
		st.Reason = fmt.Sprintf("the server is out of storage space (%s free, %s needed by [storage] min_free); try again later",
			FormatBytes(st.Free), FormatBytes(st.MinFree))
	}
	return st
}

// MinFree is the watermark in bytes for a filesystem of total bytes: the
// smaller of bytes and percent of total, of those that are set.
func MinFree(total uint64, bytes int64, percent float64) uint64 {
	var m uint64
	set := false
	if bytes > 0 {
		m, set = uint64(bytes), true
	}
	if percent > 0 {
		p := uint64(float64(total) * percent / 100)
		if !set || p < m {
			m = p
		}
	}
	return m
}

// FormatBytes writes a byte count for people: "512 B", "12.3 MiB".
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// FreeBytes reads the free space now, bypassing the cache: for callers
// that compare it with an earlier reading.
func (w *Watermark) FreeBytes() uint64 { return w.Refresh().Free }

// LowNow reads the filesystem now, bypassing the cache, and reports
// whether free space is below the watermark: for a writer that must stop
// within a few megabytes of it.
func (w *Watermark) LowNow() bool { return w.Refresh().Low }
