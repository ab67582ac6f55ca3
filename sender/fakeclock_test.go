package sender

import (
	"sync"
	"time"
)

var _ clock = (*fakeClock)(nil)

// fakeClock is a clock that moves only when the test advances it; its
// timers fire then. A sender driven by it sees the same times however busy
// the machine is.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

// newFakeClock starts a minute ahead of the wall clock, so messages queued
// by the test (due at their creation, by the wall clock) are due for it, on
// a whole millisecond, as the store keeps times.
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Add(time.Minute).Truncate(time.Millisecond)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t.c, func() bool { return false }
	}
	f.timers = append(f.timers, t)
	return t.c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, x := range f.timers {
			if x == t {
				f.timers = append(f.timers[:i], f.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// Advance moves the clock on by d and fires the timers that are due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.at.After(f.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- f.now
	}
	clear(f.timers[len(kept):])
	f.timers = kept
}

// Sleepers counts the timers waiting for the clock to move.
func (f *fakeClock) Sleepers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// withClock makes a sender read the time from c.
func withClock(c clock) func(*Options) {
	return func(o *Options) { o.clock = c }
}
