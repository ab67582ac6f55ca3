package sender

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// How a channel answers a provider's throttle signal (SMTP 421 or 454, a
// 4.7.x reply about rate, HTTP 429, 503 with Retry-After). The signal halves
// the channel's rate, never below minRateShare of the rate it recovers to.
// Signals within throttleHold of the last cut are one episode (the answers
// to the messages that were in flight together) and cut nothing more. After
// the last cut the rate climbs back linearly, by the full rate per
// throttleRecovery: a provider that stopped throttling has half its
// traffic back in 15 s and all of it within a minute, and one that still
// throttles is probed gently and cuts it again.
const (
	throttleHold     = time.Second
	throttleRecovery = time.Minute
	minRateShare     = 1.0 / 64
)

// throttle is a channel's token bucket and the slow-down its provider asked
// for. Every time it is given comes from the sender's clock, never from
// the wall clock, so tests can step through a slow-down and its recovery.
type throttle struct {
	log *slog.Logger

	mu  sync.Mutex
	lim *rate.Limiter
	// latest is the latest time given: the bucket is only ever asked at
	// it or later. Workers read the clock before they take mu, so times
	// arrive out of order, and x/time/rate counts the span before an
	// earlier time twice (it moves its own last time back), minting tokens.
	latest time.Time
	rate   float64 // configured, messages per second; 0 = unlimited
	burst  int     // configured bucket size

	// While throttled (eff > 0):
	ceiling   float64   // the rate recovered to: the configured one, or for an unlimited channel its pace when first throttled
	ceilBurst int       // the bucket size at the ceiling
	eff       float64   // the effective rate now
	cutRate   float64   // the rate the last cut set
	cutAt     time.Time // when
	cuts      int       // cuts since start

	// The pace of an unlimited channel: tokens given in the current second
	// (from winStart) and in the one before.
	winStart    time.Time
	winN, lastN int
}

// newThrottle returns a bucket of the configured rate (0: unlimited) and
// burst (at least 1 when limited).
func newThrottle(log *slog.Logger, perSecond float64, burst int) *throttle {
	t := &throttle{log: log, rate: perSecond, burst: burst}
	if perSecond > 0 {
		t.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
	} else {
		t.burst = 0
		t.lim = rate.NewLimiter(rate.Inf, 0)
	}
	return t
}

// reserve takes the next token at now and returns it; the caller acts at
// now + r.DelayFrom(now), or gives the token back with cancel.
func (t *throttle) reserve(now time.Time) *rate.Reservation {
	t.mu.Lock()
	defer t.mu.Unlock()
	now = t.monotonic(now)
	t.recover(now)
	if t.rate == 0 {
		t.count(now)
	}
	return t.lim.ReserveN(now, 1)
}

// cancel gives back the token of r, not yet used, at now.
func (t *throttle) cancel(r *rate.Reservation, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.CancelAt(t.monotonic(now))
}

// monotonic returns now, or the latest time given when now is earlier.
func (t *throttle) monotonic(now time.Time) time.Time {
	if now.Before(t.latest) {
		return t.latest
	}
	t.latest = now
	return now
}

// count keeps the pace of an unlimited channel, so a throttle signal has a
// rate to halve.
func (t *throttle) count(now time.Time) {
	switch d := now.Sub(t.winStart); {
	case d >= 2*time.Second:
		t.winStart, t.winN, t.lastN = now, 0, 0
	case d >= time.Second:
		t.winStart, t.winN, t.lastN = now, 0, t.winN
	}
	t.winN++
}

// signal cuts the rate after a provider's throttle signal at now; why is
// the provider's answer, for the log. A cut is logged once, as is the
// return to the configured rate; the steps between are not.
func (t *throttle) signal(now time.Time, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now = t.monotonic(now)
	t.recover(now)
	if t.eff > 0 && now.Sub(t.cutAt) < throttleHold {
		return
	}
	prev := t.eff
	if prev == 0 {
		t.ceiling, t.ceilBurst = t.rate, t.burst
		if t.rate == 0 {
			pace := max(t.winN, t.lastN, 1)
			t.ceiling, t.ceilBurst = float64(pace), pace
		}
		prev = t.ceiling
	}
	next := max(prev/2, t.ceiling*minRateShare)
	t.eff, t.cutRate, t.cutAt = next, next, now
	t.cuts++
	t.apply(now)
	if next < prev {
		t.log.Warn("the provider throttles this channel; sending slower, then back up to the configured rate",
			"rate", roundRate(next), "was", roundRate(prev), "reason", why)
	}
}

// recover raises a cut rate by what the time since the cut earned back,
// and ends the slow-down once it reached the ceiling.
func (t *throttle) recover(now time.Time) {
	if t.eff == 0 || now.Before(t.cutAt) {
		return
	}
	r := t.recovered(now)
	if r >= t.ceiling {
		t.eff = 0
		t.apply(now)
		t.log.Info("the channel is back to its configured rate", "rate", roundRate(t.rate))
		return
	}
	if r != t.eff {
		t.eff = r
		t.apply(now)
	}
}

// recovered is the rate at now along the climb from the last cut.
func (t *throttle) recovered(now time.Time) float64 {
	return t.cutRate + t.ceiling*now.Sub(t.cutAt).Seconds()/throttleRecovery.Seconds()
}

// apply sets the bucket to the effective rate, with a burst scaled alike
// (a provider that throttles must not get the full burst at once), or back
// to the configured one.
func (t *throttle) apply(now time.Time) {
	if t.eff == 0 {
		limit := rate.Inf
		if t.rate > 0 {
			limit = rate.Limit(t.rate)
		}
		t.lim.SetLimitAt(now, limit)
		t.lim.SetBurstAt(now, t.burst)
		return
	}
	t.lim.SetLimitAt(now, rate.Limit(t.eff))
	t.lim.SetBurstAt(now, max(1, int(float64(t.ceilBurst)*t.eff/t.ceiling)))
}

// state is the effective rate at now (0: unlimited), whether a throttle
// signal lowered it, and how many cuts there were since start. Like a
// reservation, it ends a slow-down whose climb is over: the return to the
// configured rate is logged when it is first seen, by a send or a look.
func (t *throttle) state(now time.Time) (perSecond float64, throttled bool, cuts int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now = t.monotonic(now)
	t.recover(now)
	if t.eff == 0 {
		return t.rate, false, t.cuts
	}
	return t.eff, true, t.cuts
}

// roundRate keeps three significant digits of a rate for the log.
func roundRate(r float64) float64 {
	if r == 0 {
		return 0
	}
	scale := math.Pow(10, 2-math.Floor(math.Log10(r)))
	return math.Round(r*scale) / scale
}
