package sender

import "time"

// clock is where the sender reads the time and waits: the dispatcher's
// "now" for due messages and leases, the rate limit's tokens, backoff and
// expiry. Tests drive a fake one, so what they check about rates and
// retries does not depend on how busy the machine is.
type clock interface {
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
