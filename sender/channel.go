package sender

import (
	"context"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// channel is the running state of one configured channel: its driver, its
// limits, and the queue between its dispatcher and its workers.
type channel struct {
	s      *Sender
	cfg    *config.Channel
	driver Driver
	log    *slog.Logger

	throttle    *throttle   // the rate limit, and the provider's slow-downs
	shared      *sharedRate // the rate as the total of every node's (PostgreSQL), or nil
	concurrency int
	batch       int
	maxAttempts int
	maxAge      time.Duration
	timeout     time.Duration

	wake   chan struct{}     // Nudge
	feed   chan *store.Claim // claimed bulk messages, waiting for a worker
	urgent chan *store.Claim // claimed transactional messages: workers take these first
	sched  scheduler
	// lastUrgent is when the dispatcher last claimed a transactional
	// message (its goroutine's own; bulkBatch reads it).
	lastUrgent time.Time
}

// urgentRecent is how long after a transactional claim the bulk claims
// stay half-sized (bulkBatch).
const urgentRecent = time.Second

// bulkBatch is how many bulk messages the next claim takes at now: the
// batch, or half of it while transactional messages were claimed within
// urgentRecent. A claim holds the database's one writer for its
// transaction, and an API send's claim waits behind the one in progress:
// with the bulk job sending at full speed, claims of 256 made the API
// send's created -> sent p99 about 18 ms, half-sized ones about 15, while
// a bulk job alone sends fastest with whole batches (sender/BENCHMARKS.md,
// session 9).
func (ch *channel) bulkBatch(now time.Time) int {
	if !ch.lastUrgent.IsZero() && now.Sub(ch.lastUrgent) < urgentRecent {
		return max(ch.batch/2, 1)
	}
	return ch.batch
}

func newChannel(s *Sender, cc *config.Channel, d Driver) *channel {
	ch := &channel{
		s:           s,
		cfg:         cc,
		driver:      d,
		log:         s.log.With("channel", cc.Name),
		concurrency: cc.Concurrency,
		maxAttempts: cc.MaxAttempts,
		maxAge:      cc.MaxAge.D(),
		timeout:     cc.Timeout.D(),
		wake:        make(chan struct{}, 1),
	}
	if ch.concurrency <= 0 {
		ch.concurrency = 4
		if cc.Type == config.ChannelOutbox {
			ch.concurrency = 1
		}
	}
	if ch.maxAttempts <= 0 {
		ch.maxAttempts = s.cfg.Sender.MaxAttempts
	}
	if ch.maxAttempts <= 0 {
		ch.maxAttempts = 5
	}
	if ch.maxAge <= 0 {
		ch.maxAge = s.cfg.Sender.MaxAge.D()
	}
	if ch.maxAge <= 0 {
		ch.maxAge = 24 * time.Hour
	}
	if ch.timeout <= 0 {
		ch.timeout = 10 * time.Second
	}
	ch.batch = s.claimBatch
	burst := 0
	if cc.Rate > 0 {
		burst = cc.Burst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(cc.Rate)))
		}
		// About a tenth of a second of work per claim: a claimed message
		// waits in memory with its lease running, and an urgent (API)
		// message queued meanwhile waits behind at most two batches, about
		// 200 ms of this channel's rate. At such rates a claim per 100 ms
		// costs nothing worth saving.
		ch.batch = min(s.claimBatch, max(ch.concurrency, int(math.Ceil(cc.Rate/10)), 1))
	}
	ch.throttle = newThrottle(ch.log, cc.Rate, burst)
	ch.feed = make(chan *store.Claim, ch.batch)
	ch.urgent = make(chan *store.Claim, ch.batch)
	return ch
}

// start runs the dispatcher (stopping with ctx) and the workers (stopping
// once ctx is done and their current delivery, run under deliverCtx, ended).
func (ch *channel) start(ctx, deliverCtx context.Context, col *committer, loops, workers *sync.WaitGroup) {
	loops.Go(func() { ch.dispatch(ctx) })
	for range ch.concurrency {
		workers.Go(func() { ch.work(ctx, deliverCtx, col) })
	}
}

// sessionDriver is a Driver whose workers each send through a session of
// their own (an http channel's connection), ended by done when the worker
// stops.
type sessionDriver interface {
	session() (d Driver, done func())
}

// close releases the driver's connections or files.
func (ch *channel) close() {
	if c, ok := ch.driver.(io.Closer); ok {
		if err := c.Close(); err != nil {
			ch.log.Warn("cannot close channel driver", "err", err)
		}
	}
}

// dispatch claims due messages from groups of jobs, in scheduling order,
// and feeds them to the workers; the feed's capacity keeps at most about
// two batches claimed ahead of delivery.
//
// Transactional messages take the urgent lane: they are handed over on a
// feed of their own, which the workers read first, and the dispatcher
// claims them even while it waits to hand over a bulk batch (woken by the
// nudge of a new job, or at the poll interval for a retry coming due). An
// API send then waits for the deliveries in progress, at most concurrency
// of them, not for the bulk messages claimed before it (two batches, about
// 500 at the default batch size).
func (ch *channel) dispatch(ctx context.Context) {
	idle := ch.s.cfg.Sender.PollInterval.D()
	for ctx.Err() == nil {
		jobs, err := ch.s.store.RunnableJobs(ctx, ch.cfg.Name, ch.s.clock.Now())
		if err != nil {
			if ctx.Err() == nil {
				ch.log.Error("cannot look for due messages", "err", err)
			}
			ch.sleep(ctx, idle)
			continue
		}
		group, urgent := ch.sched.next(jobs)
		if len(group) == 0 {
			ch.sleep(ctx, idle)
			continue
		}
		n := ch.batch
		if !urgent {
			n = ch.bulkBatch(ch.s.clock.Now())
		}
		claims, ok := ch.claim(ctx, group, n)
		if !ok {
			ch.sleep(ctx, idle)
			continue
		}
		if urgent {
			if !ch.handUrgent(ctx, claims) {
				return
			}
			continue
		}
		if !ch.handBulk(ctx, claims) {
			return
		}
	}
}

// claim leases up to n due messages of group and tracks them; it reports
// false on an error (logged).
func (ch *channel) claim(ctx context.Context, group []store.RunnableJob, n int) ([]store.Claim, bool) {
	now := ch.s.clock.Now()
	claims, err := ch.s.store.ClaimFromJobs(ctx, group, ch.cfg.Name, now, ch.s.cfg.Sender.Lease.D(), n)
	if err != nil {
		if ctx.Err() == nil {
			ch.log.Error("cannot claim messages", "first_job", group[0].ID, "jobs", len(group), "err", err)
		}
		return nil, false
	}
	ch.s.track(claims)
	return claims, true
}

// handUrgent feeds transactional claims to the urgent lane; it reports
// false once ctx is done (what is left stays tracked and is released by
// Run).
func (ch *channel) handUrgent(ctx context.Context, claims []store.Claim) bool {
	if len(claims) > 0 {
		ch.lastUrgent = ch.s.clock.Now()
	}
	for i := range claims {
		select {
		case ch.urgent <- &claims[i]:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// handBulk feeds bulk claims to the workers. While the feed is full it
// serves the urgent lane: a nudge (a new job) makes it claim due
// transactional messages first, and so does urgentPoll passing (a retry of
// one coming due, which nothing nudges). It reports false once ctx is done.
func (ch *channel) handBulk(ctx context.Context, claims []store.Claim) bool {
	var tick <-chan time.Time
	stop := func() bool { return false }
	defer func() { stop() }()
	for i := range claims {
		select {
		case ch.feed <- &claims[i]:
			continue
		default:
		}
		if tick == nil {
			tick, stop = ch.s.clock.Timer(ch.urgentPoll())
		}
		for handed := false; !handed; {
			select {
			case ch.feed <- &claims[i]:
				handed = true
			case <-ch.wake:
				if !ch.serveUrgent(ctx) {
					return false
				}
			case <-tick:
				tick, stop = ch.s.clock.Timer(ch.urgentPoll())
				if !ch.serveUrgent(ctx) {
					return false
				}
			case <-ctx.Done():
				return false
			}
		}
	}
	return true
}

// urgentPoll is how often a dispatcher waiting to hand over bulk claims
// looks for transactional retries come due: the poll interval, but not
// more than once a second. Such a retry also goes out once the batch in
// hand is handed over (the next look at the runnable jobs), so this only
// bounds the wait behind a slowed-down provider; a look every 10 ms (the
// benchmarks' poll interval) cost about 5 % of the sender's CPU.
func (ch *channel) urgentPoll() time.Duration {
	return max(ch.s.cfg.Sender.PollInterval.D(), time.Second)
}

// serveUrgent claims and hands over every due transactional message of the
// channel, a batch at a time. It reports false once ctx is done.
func (ch *channel) serveUrgent(ctx context.Context) bool {
	for ctx.Err() == nil {
		jobs, err := ch.s.store.RunnableJobs(ctx, ch.cfg.Name, ch.s.clock.Now())
		if err != nil {
			if ctx.Err() == nil {
				ch.log.Error("cannot look for due messages", "err", err)
			}
			return true // the bulk batch goes on; the next wake or tick tries again
		}
		group := urgentJobs(jobs)
		if len(group) == 0 {
			return true
		}
		claims, ok := ch.claim(ctx, group, ch.batch)
		if !ok {
			return true
		}
		if !ch.handUrgent(ctx, claims) {
			return false
		}
		if len(claims) < ch.batch {
			return true
		}
	}
	return false
}

// sleep waits for d, a nudge or the end of ctx.
func (ch *channel) sleep(ctx context.Context, d time.Duration) {
	c, stop := ch.s.clock.Timer(d)
	defer stop()
	select {
	case <-ctx.Done():
	case <-ch.wake:
	case <-c:
	}
}

// work delivers claimed messages until ctx is done. Each outcome is in the
// delivery log (and on PostgreSQL in the database, where the other nodes
// see it) before the worker takes its next message: a crash can then send
// at most concurrency messages of the channel twice, the ones in flight.
// An outbox channel does not wait for the database: it writes a file on
// this node's own disk, at one message per worker (concurrency 1 by
// default), which a database round trip per message would cap at a few
// hundred a second; its outcomes are in this node's log, replayed when the
// node starts again, as on SQLite.
func (ch *channel) work(ctx, deliverCtx context.Context, col *committer) {
	call := newCallTimeout(deliverCtx)
	defer call.close()
	drv := ch.driver
	if sd, ok := drv.(sessionDriver); ok {
		d, done := sd.session()
		defer done()
		drv = d
	}
	for {
		var c *store.Claim
		select {
		case c = <-ch.urgent: // the urgent lane first, whatever else is waiting
		default:
			select {
			case <-ctx.Done():
				return
			case c = <-ch.urgent:
			case c = <-ch.feed:
			}
		}
		if ctx.Err() != nil {
			return // Run releases it
		}
		col.record(deliverCtx, ch.s.observed(ch.cfg.Name, c, ch.deliver(ctx, call, drv, c)), ch.cfg.Type != config.ChannelOutbox)
	}
}

// waitTurn waits for a token of the channel's rate limit, at the rate the
// provider currently allows. It fails only when ctx ends, and then gives
// the token back.
func (ch *channel) waitTurn(ctx context.Context) error {
	if err := ch.waitLocalTurn(ctx); err != nil || ch.shared == nil {
		return err
	}
	return ch.shared.wait(ctx)
}

// waitLocalTurn waits for a token of this node's bucket.
func (ch *channel) waitLocalTurn(ctx context.Context) error {
	now := ch.s.clock.Now()
	r := ch.throttle.reserve(now)
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	c, stop := ch.s.clock.Timer(d)
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		stop()
		ch.throttle.cancel(r, ch.s.clock.Now())
		return ctx.Err()
	}
}
