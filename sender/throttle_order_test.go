package sender

import (
	"log/slog"
	"sort"
	"testing"
	"time"
)

// Workers read the clock before they take the throttle's lock, so their
// times reach the bucket out of order. x/time/rate counts the time between
// a reservation and an earlier one twice (it moves its last time back), so
// unclamped it minted tokens and a busy channel sent a few messages more
// than its rate (TestRateLimitHoldsEveryWindowToTheBucket, now and then).
func TestThrottleHoldsTheRateWhenTimesArriveOutOfOrder(t *testing.T) {
	const perSecond, burst = 20, 1
	th := newThrottle(slog.New(slog.DiscardHandler), perSecond, burst)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var acts []time.Duration
	for i := 0; i < 200; i++ {
		// Two workers, one reading the clock 40 ms before the other.
		at := time.Duration(i/2)*10*time.Millisecond + time.Duration(i%2)*-40*time.Millisecond + 40*time.Millisecond
		now := t0.Add(at)
		r := th.reserve(now)
		if !r.OK() {
			t.Fatal("reservation refused")
		}
		acts = append(acts, at+r.DelayFrom(now))
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i] < acts[j] })
	for i, act := range acts {
		if allowed := burst + perSecond*act.Seconds(); float64(i+1) > allowed+1e-6 {
			t.Fatalf("%d sends by %v: the bucket allows %.2f", i+1, act, allowed)
		}
	}
}
