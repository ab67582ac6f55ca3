package admin

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dropgate/dropgate/store"
)

// maxGroupMessages bounds the messages of one group commit, so that a
// group of large batches does not hold the writer (and the sends queued
// behind it) for long. A group always takes at least one send.
const maxGroupMessages = 2048

// sendGroups makes concurrent API sends share a commit: each send joins a
// queue; whoever finds no commit under way leads, taking the queue as it is
// and storing it in one transaction (store.CreateAPIJobs); the sends that
// arrived meanwhile form the next group, led by its first send. No send is
// answered before the commit that stored it, and none waits on a timer: a
// lone send commits at once, and under load a group is whatever queued
// during the previous commit. The leader is a request goroutine, so there
// is nothing to start or stop.
type sendGroups struct {
	st *store.Store

	mu      sync.Mutex
	pending []*groupedSend
	busy    bool // a leader is committing

	// groups and grouped count commits and the sends they stored, for the
	// benchmarks' sends per commit.
	groups, grouped atomic.Int64
}

// groupedSend is one send waiting in a group.
type groupedSend struct {
	in  store.APISend
	res store.APIResult
	// wake says the send is done (false), or that it is now the first of
	// the queue and must lead the next group (true).
	wake chan bool
}

// create stores one send, alone or with others, and returns its result
// only after the commit that stored it. ctx's cancellation does not stop
// a group others depend on: the request's client may have gone, the send
// is stored as it would have been alone, and a retry with its
// Idempotency-Key finds it.
func (g *sendGroups) create(ctx context.Context, in store.APISend) store.APIResult {
	p := &groupedSend{in: in, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, p)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		lead = <-p.wake
	}
	if lead {
		g.commitNext(context.WithoutCancel(ctx))
	}
	return p.res
}

// commitNext commits the head of the queue as one group, answers its
// sends, and hands the lead to the next queued send, if any.
func (g *sendGroups) commitNext(ctx context.Context) {
	// Let the requests that are ready to run (decoding, rendering) queue
	// before the group is taken: on busy cores a commit otherwise found
	// about 2 sends waiting, and with this yield 5-6, for a sixth less CPU
	// per send (BENCHMARKS.md). A lone send on an idle server loses
	// nothing: with nothing else to run, the yield returns at once.
	runtime.Gosched()
	g.mu.Lock()
	n, msgs := 0, 0
	for n < len(g.pending) && (n == 0 || msgs+len(g.pending[n].in.Msgs) <= maxGroupMessages) {
		msgs += len(g.pending[n].in.Msgs)
		n++
	}
	group := g.pending[:n:n]
	g.pending = append([]*groupedSend(nil), g.pending[n:]...)
	g.mu.Unlock()

	sends := make([]store.APISend, len(group))
	for i, p := range group {
		sends[i] = p.in
	}
	g.groups.Add(1)
	g.grouped.Add(int64(len(sends)))
	res, err := g.store(ctx, sends)
	for i, p := range group {
		if err != nil {
			p.res = store.APIResult{Err: err}
		} else {
			p.res = res[i]
		}
	}

	g.mu.Lock()
	var next *groupedSend
	if len(g.pending) > 0 {
		next = g.pending[0]
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, p := range group[1:] { // group[0] is the leader, already awake
		p.wake <- false
	}
	if next != nil {
		next.wake <- true
	}
}

// store is CreateAPIJobs turning a panic into the group's error: the sends
// queued behind this one wait for its hand-over, which must happen.
func (g *sendGroups) store(ctx context.Context, sends []store.APISend) (res []store.APIResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("cannot store API sends: %v", p)
		}
	}()
	return g.st.CreateAPIJobs(ctx, sends)
}
