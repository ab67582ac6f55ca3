package store

import "sync"

// queuedHooks are the functions called when messages become runnable, so
// the sender can start on a new job at once instead of at its next poll.
type queuedHooks struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

// OnJobsQueued calls fn after each commit that may have made messages
// runnable: a job queued (file or API), resumed or retried; on PostgreSQL
// also after such a commit by another node, while ListenQueue runs. fn
// runs on the committing (or listening) goroutine and must not block; a
// sender's fn is a non-blocking channel send. The returned stop
// unregisters fn.
func (s *Store) OnJobsQueued(fn func()) (stop func()) {
	h := &s.queued
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns == nil {
		h.fns = map[int]func(){}
	}
	id := h.next
	h.next++
	h.fns[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.fns, id)
	}
}

// jobsQueued runs the OnJobsQueued functions, and on PostgreSQL tells
// the other nodes (delivery_wake_pg.go); call it after the commit.
func (s *Store) jobsQueued() {
	s.runQueuedHooks()
	if s.pg {
		s.notifyQueued()
	}
}

// runQueuedHooks runs this node's OnJobsQueued functions.
func (s *Store) runQueuedHooks() {
	h := &s.queued
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fn := range h.fns {
		fn()
	}
}
