package sender

import (
	"context"
	"log/slog"
	"time"

	"github.com/dropgate/dropgate/store"
)

// collector writes delivery outcomes in batches (group commit): one
// transaction for every outcome that arrived while the previous one was
// being written. Per-transaction overhead, not the provider, is what limits
// a local sender, so this is what lets it keep up with a fast provider.
//
// Each channel bounds how many of its outcomes may wait here (see
// channel.work), which bounds what a crash can send twice.
type collector struct {
	s   *Sender
	log *slog.Logger
	in  chan pendingOutcome
}

// pendingOutcome is an outcome waiting to be written; one token is taken
// from slot once it is.
type pendingOutcome struct {
	store.Outcome
	slot <-chan struct{}
}

// maxOutcomeBatch bounds one write transaction.
const maxOutcomeBatch = 512

func newCollector(s *Sender) *collector {
	return &collector{s: s, log: s.log, in: make(chan pendingOutcome, maxOutcomeBatch)}
}

// add hands one outcome to the collector, which takes a token from slot
// once it is written (or given up on: its lease then sends it again).
func (c *collector) add(o store.Outcome, slot <-chan struct{}) {
	c.in <- pendingOutcome{Outcome: o, slot: slot}
}

// close ends run once every added outcome is written.
func (c *collector) close() { close(c.in) }

// run writes outcomes until close. ctx must outlive the workers: it is not
// the sender's run context.
func (c *collector) run(ctx context.Context) {
	batch := make([]pendingOutcome, 0, maxOutcomeBatch)
	outs := make([]store.Outcome, 0, maxOutcomeBatch)
	for p := range c.in {
		batch = append(batch[:0], p)
	fill:
		for len(batch) < maxOutcomeBatch {
			select {
			case p, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		outs = outs[:0]
		for _, p := range batch {
			outs = append(outs, p.Outcome)
		}
		c.write(ctx, outs)
		for _, p := range batch {
			<-p.slot
		}
	}
}

// write stores one batch, retrying a few times: an outcome that cannot be
// written leaves its message leased, and the lease's expiry sends it again.
func (c *collector) write(ctx context.Context, batch []store.Outcome) {
	var err error
	for try := range 5 {
		if err = c.s.store.CompleteMessages(ctx, batch); err == nil {
			break
		}
		time.Sleep(time.Duration(50<<try) * time.Millisecond)
	}
	if err != nil {
		c.log.Error("cannot record delivery outcomes; the messages will be sent again when their leases expire",
			"count", len(batch), "err", err)
		return
	}
	c.s.untrack(batch)
	for _, o := range batch {
		if o.Kind == store.OutcomeRetry || o.Kind == store.OutcomeReleased {
			c.s.Nudge()
			break
		}
	}
}
