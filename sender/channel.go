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

	throttle    *throttle // the rate limit, and the provider's slow-downs
	concurrency int
	batch       int
	maxAttempts int
	maxAge      time.Duration
	timeout     time.Duration

	wake  chan struct{}     // Nudge
	feed  chan *store.Claim // claimed messages, waiting for a worker
	sched scheduler
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
func (ch *channel) dispatch(ctx context.Context) {
	idle := ch.s.cfg.Sender.PollInterval.D()
	lease := ch.s.cfg.Sender.Lease.D()
	for ctx.Err() == nil {
		now := ch.s.clock.Now()
		jobs, err := ch.s.store.RunnableJobs(ctx, ch.cfg.Name, now)
		if err != nil {
			if ctx.Err() == nil {
				ch.log.Error("cannot look for due messages", "err", err)
			}
			ch.sleep(ctx, idle)
			continue
		}
		group, ok := ch.sched.next(jobs)
		if !ok {
			ch.sleep(ctx, idle)
			continue
		}
		claims, err := ch.s.store.ClaimFromJobs(ctx, group, ch.cfg.Name, now, lease, ch.batch)
		if err != nil {
			if ctx.Err() == nil {
				ch.log.Error("cannot claim messages", "first_job", group[0].ID, "jobs", len(group), "err", err)
			}
			ch.sleep(ctx, idle)
			continue
		}
		ch.s.track(claims)
		for i := range claims {
			select {
			case ch.feed <- &claims[i]:
			case <-ctx.Done():
				return // the rest stays tracked and is released by Run
			}
		}
	}
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
// delivery log before the worker takes its next message: a crash can then
// send at most concurrency messages of the channel twice, the ones in
// flight.
func (ch *channel) work(ctx, deliverCtx context.Context, col *committer) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-ch.feed:
			if ctx.Err() != nil {
				return // Run releases it
			}
			col.record(ch.s.observed(ch.cfg.Name, c, ch.deliver(ctx, deliverCtx, c)))
		}
	}
}

// waitTurn waits for a token of the channel's rate limit, at the rate the
// provider currently allows. It fails only when ctx ends, and then gives
// the token back.
func (ch *channel) waitTurn(ctx context.Context) error {
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
		r.CancelAt(ch.s.clock.Now())
		return ctx.Err()
	}
}
