package sender

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// committer records delivery outcomes by group commit. A worker hands it
// an outcome and waits until that outcome is durable before it starts its
// next provider call, so a crash can send again at most one message per
// worker: the one in flight or waiting here. A single goroutine writes: it
// takes every outcome pending, writes them in one statement or transaction,
// and wakes their workers; outcomes that arrive while it writes wait for the
// next round. There is no linger: a lone outcome is written at once, and
// batches form exactly when the database is the bottleneck.
//
// A round makes a sent message durable with the least SQLite can write (its
// provider id and sent_at, see store.CompleteMessages); moving it to "sent"
// with its index entries is settled later, for many messages at once: when
// settleBatch are waiting, when a job has nothing left in flight (so it can
// finish), settleDelay after the first one, and at stop.
type committer struct {
	s   *Sender
	log *slog.Logger

	kick chan struct{} // something is pending; closed by close

	// Only the run goroutine touches these.
	unsettled   []int64 // delivered, not yet settled
	settleTimer *time.Timer
	settleDue   bool // settleTimer is running

	mu      sync.Mutex
	pending []store.Outcome
	round   *round // the round pending will be written in
}

// round is one group commit; done is closed once its outcomes were
// written (or given up on).
type round struct{ done chan struct{} }

// settleBatch and settleDelay bound how many delivered messages wait to be
// settled, and for how long: until then they show as "sending".
const (
	settleBatch = 512
	settleDelay = 100 * time.Millisecond
)

func newCommitter(s *Sender) *committer {
	c := &committer{s: s, log: s.log, kick: make(chan struct{}, 1), round: &round{done: make(chan struct{})}}
	c.settleTimer = time.NewTimer(time.Hour)
	c.settleTimer.Stop()
	return c
}

// record adds an outcome to the next round and waits for that round to be
// written.
func (c *committer) record(o store.Outcome) {
	c.mu.Lock()
	c.pending = append(c.pending, o)
	r := c.round
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	<-r.done
}

// close ends run once every recorded outcome is written. No record may
// follow it.
func (c *committer) close() { close(c.kick) }

// run writes rounds until close. ctx must outlive the workers: it is not
// the sender's run context.
func (c *committer) run(ctx context.Context) {
	defer c.settleTimer.Stop()
	var spare []store.Outcome
	for {
		select {
		case _, ok := <-c.kick:
			if !ok {
				c.commit(ctx, spare)
				c.settleAll(ctx, nil)
				return
			}
			spare = c.commit(ctx, spare)
		case <-c.settleTimer.C:
			c.settleDue = false
			c.settleAll(ctx, nil)
		}
	}
}

// commit writes what is pending as one round and returns the batch's
// storage for reuse.
func (c *committer) commit(ctx context.Context, spare []store.Outcome) []store.Outcome {
	c.mu.Lock()
	batch, r := c.pending, c.round
	c.pending, c.round = spare[:0], &round{done: make(chan struct{})}
	c.mu.Unlock()
	if len(batch) > 0 {
		c.write(ctx, batch)
	}
	close(r.done)
	if len(batch) > 0 {
		c.settle(ctx, batch)
	}
	return batch
}

// write stores one batch, retrying a few times: an outcome that cannot be
// written leaves its message leased, and the lease's expiry sends it again.
func (c *committer) write(ctx context.Context, batch []store.Outcome) {
	var err error
	for try := range 5 {
		if err = c.s.store.CompleteMessages(ctx, batch); err == nil {
			return
		}
		time.Sleep(time.Duration(50<<try) * time.Millisecond)
	}
	c.log.Error("cannot record delivery outcomes; the messages will be sent again when their leases expire",
		"count", len(batch), "err", err)
}

// settle runs after a round's workers were woken: it forgets the written
// claims, settles deliveries when due, checks for the end each job that has
// nothing left in flight, and wakes the dispatchers when messages went back
// to the queue.
func (c *committer) settle(ctx context.Context, batch []store.Outcome) {
	requeued := false
	for _, o := range batch {
		switch o.Kind {
		case store.OutcomeSent:
			c.unsettled = append(c.unsettled, o.ID)
		case store.OutcomeRetry, store.OutcomeReleased:
			requeued = true
		}
	}
	idle := c.s.untrack(batch)
	switch {
	case len(idle) > 0 || len(c.unsettled) >= settleBatch:
		c.settleAll(ctx, idle)
	case len(c.unsettled) > 0 && !c.settleDue:
		c.settleTimer.Reset(settleDelay)
		c.settleDue = true
	}
	if requeued {
		c.s.Nudge()
	}
}

// settleAll settles every delivered message, then checks whether the idle
// jobs ended. A failure leaves the messages delivered: RequeueExpiredLeases
// settles them once their leases expire.
func (c *committer) settleAll(ctx context.Context, idle []int64) {
	if len(c.unsettled) > 0 {
		if err := c.s.store.SettleDeliveries(ctx, c.unsettled); err != nil {
			c.log.Error("cannot settle deliveries; they will be when their leases expire", "count", len(c.unsettled), "err", err)
		}
		c.unsettled = c.unsettled[:0]
	}
	if c.settleDue {
		c.settleTimer.Stop()
		c.settleDue = false
	}
	for _, id := range idle {
		if _, err := c.s.store.FinishJob(ctx, id); err != nil {
			c.log.Error("cannot finish job; the periodic check will", "job", id, "err", err)
		}
	}
}
