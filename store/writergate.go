package store

import (
	"context"
	"sync"
)

// The writer is one connection, and database/sql hands a freed connection
// to a random one of the goroutines waiting for it. Under a bulk send the
// sender's claims and recorded outcomes queue for it all the time, so an
// API send (a client waiting for its 202) or the claim of its message (a
// client's one-time code on its way) often went after one or two of them.
// The writes that are many and long (the sender's claims, outcomes and
// job ends) and the ones somebody waits for (API sends, claims of
// transactional messages) therefore take the writer through a gate that
// lets an urgent write go first: a holder of the gate hands it to the
// oldest urgent waiter, then to the oldest other one. The other writes
// (rare: an admin action, a file's bookkeeping) take the connection
// directly, as before.

// writerGate orders the gated writes: urgent ones first, each class first
// come, first served. The zero value is open.
type writerGate struct {
	mu     sync.Mutex
	held   bool
	urgent []chan struct{} // waiting, oldest first; closed to hand over
	normal []chan struct{}
}

// lockWriter waits for the gate (ahead of every non-urgent waiter when
// urgent) and returns its release, to be called once the transaction or
// statement has given the writer connection back to the pool. It fails
// only when ctx ends first.
func (s *Store) lockWriter(ctx context.Context, urgent bool) (release func(), err error) {
	g := &s.gate
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return g.unlock, nil
	}
	ch := make(chan struct{})
	if urgent {
		g.urgent = append(g.urgent, ch)
	} else {
		g.normal = append(g.normal, ch)
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return g.unlock, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	removed := remove(&g.urgent, ch) || remove(&g.normal, ch)
	g.mu.Unlock()
	if !removed { // handed over meanwhile: pass it on
		g.unlock()
	}
	return nil, ctx.Err()
}

// unlock hands the gate to the next waiter, urgent ones first, or opens it.
func (g *writerGate) unlock() {
	g.mu.Lock()
	var next chan struct{}
	switch {
	case len(g.urgent) > 0:
		next, g.urgent = g.urgent[0], g.urgent[1:]
	case len(g.normal) > 0:
		next, g.normal = g.normal[0], g.normal[1:]
	default:
		g.held = false
	}
	g.mu.Unlock()
	if next != nil {
		close(next)
	}
}

// urgentWaiting reports whether an urgent write waits for the gate: a
// long holder may end its transaction early and take the gate again.
func (g *writerGate) urgentWaiting() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.urgent) > 0
}

// remove deletes ch from q, reporting whether it was there.
func remove(q *[]chan struct{}, ch chan struct{}) bool {
	for i, c := range *q {
		if c == ch {
			*q = append((*q)[:i:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}
