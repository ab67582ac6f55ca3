package sender

import (
	"context"
	"log/slog"
	"time"

	"github.com/dropgate/dropgate/store"
)

// collector writes delivery outcomes in batches: one transaction for
// everything that finished since the last write, which is what lets a
// local sender keep up with a fast provider.
type collector struct {
	s   *Sender
	log *slog.Logger
	in  chan store.Outcome
}

// maxOutcomeBatch bounds one write transaction.
const maxOutcomeBatch = 512

// outcomeLinger is how long the collector waits for more outcomes before
// writing a small batch. Each transaction has a fixed cost (commit, job
// finish checks); a few milliseconds of waiting lets a busy channel write
// hundreds of outcomes per transaction instead of a handful.
const outcomeLinger = 5 * time.Millisecond

func newCollector(s *Sender) *collector {
	return &collector{s: s, log: s.log, in: make(chan store.Outcome, 4*maxOutcomeBatch)}
}

// add hands one outcome to the collector.
func (c *collector) add(o store.Outcome) { c.in <- o }

// close ends run once every added outcome is written.
func (c *collector) close() { close(c.in) }

// run writes outcomes until close. ctx must outlive the workers: it is not
// the sender's run context.
func (c *collector) run(ctx context.Context) {
	batch := make([]store.Outcome, 0, maxOutcomeBatch)
	linger := time.NewTimer(outcomeLinger)
	for o := range c.in {
		batch = append(batch[:0], o)
		linger.Reset(outcomeLinger)
	fill:
		for len(batch) < maxOutcomeBatch {
			select {
			case o, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			case <-linger.C:
				break fill
			}
		}
		c.write(ctx, batch)
	}
	linger.Stop()
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
	retried := false
	for _, o := range batch {
		if o.Kind == store.OutcomeRetry || o.Kind == store.OutcomeReleased {
			retried = true
		}
	}
	if retried {
		c.s.Nudge()
	}
}
