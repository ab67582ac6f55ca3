// Package freelist keeps a few slices for reuse from one request to the
// next. An events batch's per-event lists (what the store prepares, what
// the engine writes) were a third of an event's garbage, and the
// collector's work grows with both the garbage and the live batches it
// scans (workflow/BENCHMARKS.md, session 11). A sync.Pool is emptied by
// every second collection, which under that load came every few
// requests; a free list keeps its slices until they are taken.
package freelist

// Slices keeps up to a fixed number of slices of T, each of at most a
// fixed capacity: what it holds is bounded, and a larger request's slice
// is left to the collector. It is safe for concurrent use; the zero value
// keeps nothing (use New).
type Slices[T any] struct {
	free   chan []T
	maxCap int
}

// New returns a list keeping up to keep slices of capacity maxCap or less.
func New[T any](keep, maxCap int) *Slices[T] {
	return &Slices[T]{free: make(chan []T, keep), maxCap: maxCap}
}

// Get returns a slice of length n, every element zero: a kept one when
// one is large enough, else a new one.
func (l *Slices[T]) Get(n int) []T {
	if l != nil && n <= l.maxCap {
		select {
		case b := <-l.free:
			if cap(b) >= n {
				return b[:n] // cleared by Put
			}
		default:
		}
	}
	return make([]T, n)
}

// Put gives b back for a later Get. It clears b first, so that a kept
// slice holds on to nothing its last user referred to; the caller must
// not use b after.
func (l *Slices[T]) Put(b []T) {
	if l == nil || cap(b) == 0 || cap(b) > l.maxCap {
		return
	}
	b = b[:cap(b)]
	clear(b)
	select {
	case l.free <- b[:0]:
	default:
	}
}
