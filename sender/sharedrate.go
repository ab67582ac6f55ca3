package sender

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// sharedRate holds a rate-limited channel to its configured rate across
// every node on a PostgreSQL store: the rate is the total of all nodes'
// sends, taken from one token bucket per channel in the database
// (store.TakeRateTokens). The node's own bucket (throttle) still applies
// first, with the provider's slow-downs, which each node takes on its own.
type sharedRate struct {
	st      *store.Store
	log     *slog.Logger
	channel string
	rate    float64
	burst   int
	batch   int // tokens taken per round trip

	mu   sync.Mutex // one take at a time per node; workers wait behind it
	held int        // tokens taken and not yet spent
}

// newSharedRate returns the shared bucket of a channel of perSecond (> 0)
// and burst. A node takes a fiftieth of a second's tokens at a time: few
// round trips (at most fifty a second per node), and few tokens held
// locally beyond the shared bound.
func newSharedRate(st *store.Store, log *slog.Logger, channel string, perSecond float64, burst int) *sharedRate {
	return &sharedRate{st: st, log: log, channel: channel, rate: perSecond, burst: max(burst, 1),
		batch: max(1, min(max(burst, 1), int(math.Ceil(perSecond/50))))}
}

// wait takes one token of the shared bucket, waiting for it as long as it
// takes; it fails only when ctx ends.
func (r *sharedRate) wait(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.held > 0 {
			r.held--
			return nil
		}
		got, wait, err := r.st.TakeRateTokens(ctx, r.channel, r.rate, r.burst, r.batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Sending without the shared bound could exceed the provider's
			// limit: wait for the database instead.
			r.log.Error("cannot take a token of the channel's shared rate; waiting", "err", err)
			wait = time.Second
		}
		if got > 0 {
			r.held = got
			continue
		}
		// Tokens refill by the database's clock, so the wait is real time.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
