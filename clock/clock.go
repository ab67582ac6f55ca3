// Package clock is where the sender and the workflow engine read the time
// and wait: due messages and runs, leases, rate-limit tokens, backoff and
// the scheduler's sleep. Tests drive a fake one (clocktest.Fake), so that
// what they check about rates, retries and delays does not depend on how
// busy the machine is, and a one-hour delay takes no hour.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a stop
	// function that releases the timer early.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Timer returns a time.Timer's channel and its Stop.
func (Real) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
