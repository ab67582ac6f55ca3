package sender

import (
	"time"

	"github.com/dropgate/dropgate/clock"
	"github.com/dropgate/dropgate/clock/clocktest"
)

// fakeClock is a clock that moves only when the test advances it; its
// timers fire then. A sender driven by it sees the same times however busy
// the machine is.
type fakeClock = clocktest.Fake

// newFakeClock starts a minute ahead of the wall clock, so messages queued
// by the test (due at their creation, by the wall clock) are due for it, on
// a whole millisecond, as the store keeps times.
func newFakeClock() *fakeClock {
	return clocktest.NewFake(time.Now().Add(time.Minute).Truncate(time.Millisecond))
}

// withClock makes a sender read the time from c.
func withClock(c clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = c }
}
