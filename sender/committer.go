package sender

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// committer records delivery outcomes. record appends an outcome to the
// journal, one write (a copy into a mapped file, journal_map.go), and
// returns: from then on a crash cannot lose it, so a worker that records
// before it starts its next provider call makes a crash send again at
// most the messages in flight, one per worker. The
// outcomes reach the database later, many in one transaction, from run:
// when applyBatch are waiting, at once when a job may have ended or a
// message goes back to the queue, applyDelay after the first otherwise, and
// at close. Until then a delivered message shows as "sending".
//
// When the journal cannot be written (disk full, permissions), record
// writes the outcome to the database itself before it returns, which keeps
// the bound at the old price of a commit per outcome.
//
// On PostgreSQL (shared) the journal is not enough: it is this node's own,
// and a node that dies for good never replays it, while the other nodes
// take over its leases and would send again every message it delivered
// but had not yet applied (up to applyBatch, or applyDelay's worth). There
// record also waits (for the channels that ask it to: not an outbox, see
// channel.work) until its outcome is committed to the database, where
// every node sees it, before it returns: the database bounds a kill -9 to
// the messages in flight, as the journal does on one node. A sent outcome
// (nearly all of them) waits for markLoop's store.MarkDelivered, one
// statement on the message rows alone, which other nodes' lease takeover
// honours; the full apply with the jobs' tallies stays batched as above (a
// transaction per outcome, on tally rows every node writes, cost three
// nodes a quarter of their sends, BENCHMARKS.md). Any other outcome, and a
// sent one whose mark failed, waits for the full apply, run at once. Both
// waits are group commits: every outcome recorded meanwhile goes into the
// next statement or transaction, whose commit releases their workers
// together. The journal is still written (a write of a few microseconds):
// an outcome whose commit failed, or that a stopping node could not wait
// for, is then kept for the next start.
type committer struct {
	s   *Sender
	log *slog.Logger
	ctx context.Context // outlives the sender's run context: outcomes are written after a stop
	// complete writes one transaction of outcomes: the store's
	// CompleteMessages (tests watch the calls through it).
	complete func(context.Context, []store.Outcome) error

	kick chan struct{} // something to apply; capacity 1
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returned

	mu      sync.Mutex
	j       *journal        // nil once it failed
	pending []store.Outcome // journalled, not yet applied
	idle    []int64         // jobs left with nothing in flight, to check for their end after the apply
	urgent  bool            // apply now rather than after applyDelay
	shared  bool            // record waits for the commit (PostgreSQL, several nodes)
	// committed is closed once the outcomes pending now are in the
	// database; nil when nobody waits.
	committed chan struct{}
	marks     []store.Outcome // sent outcomes for the next mark (shared)
	marked    chan struct{}   // closed once marks are in the database
	fallback  []chan struct{} // marks that failed: released by the next apply
	markKick  chan struct{}   // marks to write; capacity 1
	markDone  chan struct{}   // closed when markLoop returned

	applyMu sync.Mutex      // one apply at a time; guards the fields below
	segs    []string        // segments whose outcomes are all in the database once failed is written
	failed  []store.Outcome // an apply that failed, retried with the next one
	// waiting are the committed channels of failed, closed once it is written.
	waiting []chan struct{}
}

// applyBatch and applyDelay bound how many recorded outcomes wait for the
// database, and for how long.
const (
	applyBatch = 512
	applyDelay = 100 * time.Millisecond
	// applyRetry is the wait before an apply that failed is tried again.
	applyRetry = time.Second
	// applyChunk is the most outcomes of one transaction. The writer is
	// the database's only one: an API send (or the claim of its message)
	// that arrives during an apply waits for its transaction, and the
	// store lets it go before the next one (store.writerGate). A
	// transaction of 512 outcomes held the writer for 5-40 ms on a busy
	// 2-core machine; one of 128 for a quarter of that, for about one
	// commit more per 128 messages (BENCHMARKS.md).
	applyChunk = 128
)

// newCommitter returns a committer writing to j; ctx must outlive the
// workers.
func newCommitter(ctx context.Context, s *Sender, j *journal) *committer {
	return &committer{s: s, log: s.log, ctx: ctx, j: j, complete: s.store.CompleteMessages,
		shared: s.store.Postgres(),
		kick:   make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		markKick: make(chan struct{}, 1), markDone: make(chan struct{})}
}

// record makes o durable: in the journal, or failing that in the database.
// When shared and wait, it returns once o is in the database, or when ctx
// ends (o is then in the journal, and applied at close or the next start).
func (c *committer) record(ctx context.Context, o store.Outcome, wait bool) {
	c.mu.Lock()
	err := errJournalClosed
	if c.j != nil {
		err = c.j.append([]store.Outcome{o})
	}
	// Only the first outcome of a batch (which arms the timer) and an
	// urgent one wake run: a wake-up per outcome cost the workers a
	// goroutine switch per message.
	wake := len(c.pending) == 0
	c.pending = append(c.pending, o)
	idle := c.s.untrack([]store.Outcome{o})
	c.idle = append(c.idle, idle...)
	if len(idle) > 0 || o.Kind != store.OutcomeSent || len(c.pending) >= applyBatch {
		wake = wake || !c.urgent
		c.urgent = true
	}
	var committed chan struct{}
	markNow := false
	switch {
	case !wait:
	case c.shared && o.Kind == store.OutcomeSent:
		if c.marked == nil {
			c.marked = make(chan struct{})
		}
		committed = c.marked
		markNow = len(c.marks) == 0
		c.marks = append(c.marks, o)
	case c.shared:
		if c.committed == nil {
			c.committed = make(chan struct{})
		}
		committed = c.committed
		wake = wake || !c.urgent
		c.urgent = true
	}
	if c.j != nil && c.j.mapErr != nil {
		c.log.Warn("cannot map the delivery log; writing it instead", "err", c.j.mapErr)
		c.j.mapErr = nil
	}
	if err != nil && c.j != nil {
		c.log.Error("cannot write the delivery log; outcomes are written to the database one by one (slower)", "err", err)
		c.j.close()
		c.j = nil
	}
	c.mu.Unlock()
	if markNow { // before any return: the next outcomes kick only a non-empty marks
		select {
		case c.markKick <- struct{}{}:
		default:
		}
	}
	if err != nil {
		if c.apply() {
			return
		}
		wake = true
	}
	if wake {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	if committed != nil {
		select {
		case <-committed:
		case <-ctx.Done():
		}
	}
}

var errJournalClosed = errors.New("delivery log closed")

// close applies what is left and stops run. No record may follow it.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}

// markLoop writes the sent outcomes that workers wait for (shared) until
// close.
func (c *committer) markLoop() {
	defer close(c.markDone)
	for {
		select {
		case <-c.stop:
			return
		case <-c.markKick:
		}
		c.mu.Lock()
		batch, done := c.marks, c.marked
		c.marks, c.marked = nil, nil
		c.mu.Unlock()
		if done == nil {
			continue
		}
		if err := c.s.store.MarkDelivered(c.ctx, batch); err != nil {
			// The full apply records them as well: its workers wait for
			// that instead.
			c.log.Warn("cannot mark deliveries; waiting for their full record", "count", len(batch), "err", err)
			c.mu.Lock()
			c.fallback = append(c.fallback, done)
			c.urgent = true
			c.mu.Unlock()
			select {
			case c.kick <- struct{}{}:
			default:
			}
			continue
		}
		close(done)
	}
}

// run applies recorded outcomes until close.
func (c *committer) run() {
	defer close(c.done)
	if c.shared {
		go c.markLoop()
		defer func() { <-c.markDone }()
	} else {
		close(c.markDone)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case <-c.stop:
			timer.Stop()
			c.apply()
			c.mu.Lock()
			if c.j != nil {
				if err := c.j.close(); err != nil {
					c.log.Warn("cannot close the delivery log", "err", err)
				}
			}
			c.mu.Unlock()
			return
		case <-timer.C:
			armed = false
		case <-c.kick:
			c.mu.Lock()
			urgent := c.urgent
			c.mu.Unlock()
			if !urgent {
				if !armed {
					timer.Reset(applyDelay)
					armed = true
				}
				continue
			}
			if armed {
				timer.Stop()
				armed = false
			}
		}
		if !c.apply() {
			timer.Reset(applyRetry)
			armed = true
		}
	}
}

// apply writes every outcome recorded so far to the database in one
// transaction, then drops the journal segments that held them and checks
// the jobs left idle for their end. It reports false when the write failed;
// the outcomes stay in their segments and are tried again by the next apply
// (or at the next start).
func (c *committer) apply() bool {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	batch, idle, committed, fallback := c.pending, c.idle, c.committed, c.fallback
	c.pending, c.idle, c.urgent, c.committed, c.fallback = nil, nil, false, nil, nil
	var seg string
	var rotErr error
	if c.j != nil {
		seg, rotErr = c.j.rotate()
	}
	c.mu.Unlock()
	if rotErr != nil {
		c.log.Warn("cannot close a delivery log segment", "err", rotErr)
	}
	if seg != "" {
		c.segs = append(c.segs, seg)
	}
	if len(c.failed) > 0 {
		batch = append(c.failed, batch...)
	}
	if committed != nil {
		c.waiting = append(c.waiting, committed)
	}
	c.waiting = append(c.waiting, fallback...)
	for done := 0; done < len(batch); {
		n := min(len(batch)-done, applyChunk)
		if err := c.write(batch[done : done+n]); err != nil {
			c.failed = batch[done:]
			c.log.Error("cannot record delivery outcomes; retrying (they are safe in the delivery log)", "count", len(c.failed), "err", err)
			return false
		}
		done += n
	}
	c.failed = nil
	for _, w := range c.waiting {
		close(w) // their workers go on before the upkeep below
	}
	c.waiting = c.waiting[:0]
	if err := removeSegments(c.segs); err != nil {
		c.log.Warn("cannot remove applied delivery log segments; they will be applied again (harmlessly) at the next start", "err", err)
	}
	c.segs = c.segs[:0]
	requeued := false
	for _, o := range batch {
		requeued = requeued || o.Kind == store.OutcomeRetry || o.Kind == store.OutcomeReleased
	}
	if _, err := c.s.store.FinishJobsByID(c.ctx, idle); err != nil {
		c.log.Error("cannot finish jobs; the periodic check will", "jobs", len(idle), "err", err)
	}
	if requeued {
		c.s.Nudge()
	}
	return true
}

// write stores one batch, retrying a few times.
func (c *committer) write(batch []store.Outcome) error {
	if len(batch) == 0 {
		return nil
	}
	var err error
	for try := range 3 {
		if err = c.complete(c.ctx, batch); err == nil {
			return nil
		}
		time.Sleep(time.Duration(50<<try) * time.Millisecond)
	}
	return err
}
