package sender

import (
	"context"
	"sync"
	"time"
)

// callTimeout bounds the provider calls of one worker, which makes one at
// a time, with one context and one timer kept for all of them.
// context.WithTimeout per call cost five allocations and about 1 KB a
// message (a timer, a context, its registration with the parent, its Done
// channel), a few per cent of the sender's CPU with the collection they
// cause. The context is replaced only after a call timed out or the parent
// ended. A timed-out call's context ends with context.DeadlineExceeded as
// its cause, which net/http reports ("context deadline exceeded") as it
// did for a context.WithTimeout.
type callTimeout struct {
	parent context.Context // the deliveries' context: ends when a stop's grace ran out
	timer  *time.Timer

	mu       sync.Mutex
	ctx      context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time // of the call in progress; zero between calls
}

// newCallTimeout returns a callTimeout for calls under parent.
func newCallTimeout(parent context.Context) *callTimeout {
	t := &callTimeout{parent: parent}
	t.timer = time.AfterFunc(time.Hour, t.fire)
	t.timer.Stop()
	return t
}

// begin starts a call that may take d, and returns its context.
func (t *callTimeout) begin(d time.Duration) context.Context {
	t.mu.Lock()
	if t.ctx == nil || t.ctx.Err() != nil {
		t.ctx, t.cancel = context.WithCancelCause(t.parent)
	}
	t.deadline = time.Now().Add(d)
	ctx := t.ctx
	t.mu.Unlock()
	t.timer.Reset(d)
	return ctx
}

// end ends the call begin started.
func (t *callTimeout) end() {
	t.timer.Stop()
	t.mu.Lock()
	t.deadline = time.Time{}
	t.mu.Unlock()
}

// fire cancels the call in progress once it is past its deadline. The
// check makes a late run of the timer (armed for an earlier call that ended
// just in time) harmless to the call after it.
func (t *callTimeout) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.deadline.IsZero() && !time.Now().Before(t.deadline) {
		t.cancel(context.DeadlineExceeded)
	}
}

// close releases the context.
func (t *callTimeout) close() {
	t.timer.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel != nil {
		t.cancel(context.Canceled)
	}
}
