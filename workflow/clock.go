package workflow

import "time"

// Clock is where the engine reads the time and waits: "now" for events and
// due runs, and the scheduler's timer. Tests drive a fake one, so that a
// one-hour delay takes no hour and nothing depends on how busy the machine
// is (the sender's clock, sender/clock.go, is the same shape).
type Clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a stop
	// function that releases the timer early.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
