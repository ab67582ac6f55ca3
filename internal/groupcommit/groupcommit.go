// Package groupcommit makes concurrent callers share a transaction (a
// group commit). Each call joins a queue; whoever finds no commit under
// way leads, takes the queue as it is (up to a budget, at least one call)
// and stores it as one group; the calls that arrive meanwhile form the
// next group, led by the first of them. No call returns before the commit
// that stored it, and none waits on a timer: a lone call commits at once,
// and under load a group is whatever queued during the previous commit.
// The leader is a caller's goroutine, so there is nothing to start or
// stop. API sends (server/admin/sendgroup.go) and API events
// (store/events_group.go) use it.
package groupcommit

import (
	"context"
	"runtime"
	"sync"
)

// Queue is the queue of calls waiting for their group. T is a call's own
// record (usually a pointer holding its input and, once stored, its
// result); the zero Queue is not usable, make one with New.
type Queue[T any] struct {
	size   func(T) int // a call's share of the budget
	budget int

	mu      sync.Mutex
	pending []*call[T]
	busy    bool // a leader is storing a group
}

type call[T any] struct {
	in T
	// wake says the call is done (false), or that it is now the first of
	// the queue and must lead the next group (true).
	wake chan bool
}

// New returns a queue whose groups hold calls of size adding up to at most
// budget (a larger call still goes, alone).
func New[T any](budget int, size func(T) int) *Queue[T] {
	return &Queue[T]{size: size, budget: budget}
}

// Do queues in and returns once store has stored the group holding it.
// store gets the group's calls in arrival order and must record each
// call's outcome in it; it must not panic (the calls behind the group wait
// for its hand-over). The group's ctx is the leader's without its
// cancellation: a group others depend on is stored as it would have been
// alone.
func (q *Queue[T]) Do(ctx context.Context, in T, store func(context.Context, []T)) {
	c := &call[T]{in: in, wake: make(chan bool, 1)}
	q.mu.Lock()
	q.pending = append(q.pending, c)
	lead := !q.busy
	q.busy = true
	q.mu.Unlock()
	if !lead {
		lead = <-c.wake
	}
	if lead {
		q.storeNext(context.WithoutCancel(ctx), store)
	}
}

// Waiting is how many calls wait for the group under way.
func (q *Queue[T]) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// storeNext stores the head of the queue as one group, wakes its calls,
// and hands the lead to the next queued call, if any.
func (q *Queue[T]) storeNext(ctx context.Context, store func(context.Context, []T)) {
	// Let the requests that are ready to run (decoding, rendering) queue
	// before the group is taken: on busy cores an API send's commit
	// otherwise found about 2 sends waiting, and with this yield 5-6, for a
	// sixth less CPU per send (server/admin/BENCHMARKS.md). A lone call on
	// an idle server loses nothing: with nothing else to run, the yield
	// returns at once.
	runtime.Gosched()
	q.mu.Lock()
	n, total := 0, 0
	for n < len(q.pending) && (n == 0 || total+q.size(q.pending[n].in) <= q.budget) {
		total += q.size(q.pending[n].in)
		n++
	}
	group := q.pending[:n:n]
	q.pending = append([]*call[T](nil), q.pending[n:]...)
	q.mu.Unlock()

	ins := make([]T, len(group))
	for i, c := range group {
		ins[i] = c.in
	}
	store(ctx, ins)

	q.mu.Lock()
	var next *call[T]
	if len(q.pending) > 0 {
		next = q.pending[0]
	} else {
		q.busy = false
	}
	q.mu.Unlock()
	for _, c := range group[1:] { // group[0] is the leader, already awake
		c.wake <- false
	}
	if next != nil {
		next.wake <- true
	}
}
