// Package sender delivers queued messages through the configured channels
// (SMTP, HTTP providers, the local outbox) with leases, retries, per-channel
// rate and concurrency limits, and a fair order across jobs and partners.
//
// One dispatcher per channel picks runnable jobs (every transactional one
// first, then one bulk partner's at a time, partners in turn), claims a
// batch of their due messages with a lease, and hands them to the channel's
// workers. Transactional messages (store.UrgentSource: API and workflow
// jobs) take an urgent lane that the workers read first and that the
// dispatcher serves even while it waits to hand over a bulk batch
// (channel.go). Workers call the driver and append the outcome to the delivery
// log (journal.go) before their next provider call, so a crash sends at
// most the in-flight messages twice; the committer moves logged outcomes
// into the database in batches. On PostgreSQL a worker (not of an outbox
// channel) also waits until its outcome is in the database (a delivery
// marked on its row, grouped with the other workers') before its next
// message, since another node, not this one's log, takes over the leases
// of a node that died (committer.go).
package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dropgate/dropgate/clock"
	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Options are the dependencies and tunables of a Sender.
type Options struct {
	Config     *config.Config // validated
	Store      *store.Store
	Logger     *slog.Logger // nil discards logs, as in every component
	HTTPClient *http.Client // optional, for tests; http channels otherwise get their own

	// SMTPTLSConfig, when set, is the base TLS configuration of smtp
	// channels (tests use it to trust their server's certificate).
	SMTPTLSConfig *tls.Config

	// HTTPTLSConfig, when set, is the base TLS configuration of http
	// channels (tests use it to trust their provider's certificate).
	HTTPTLSConfig *tls.Config

	// Suppressed, when set, is asked before each delivery whether the
	// recipient must not be messaged; a suppressed message ends as
	// "suppressed" without reaching the provider. Nil means no suppression.
	Suppressed func(ctx context.Context, partner, channel, recipient string) (bool, error)

	// UnsubscribeURL, when set, makes a recipient's one-click unsubscribe
	// link: smtp channels send it in List-Unsubscribe with
	// List-Unsubscribe-Post (RFC 8058).
	UnsubscribeURL func(partner, recipient string) string

	// RetryBase and RetryCap shape the backoff between transient failures:
	// RetryBase×2^(attempt-1) with jitter, at most RetryCap. Zero means 1s
	// and 1h.
	RetryBase time.Duration
	RetryCap  time.Duration

	// clock, when set, replaces the wall clock (tests).
	clock clock.Clock
	// listening, when set, is called each time the sender listens for
	// other nodes' queued jobs (tests).
	listening func()
	// Observer, when set, is told of every delivery (for metrics).
	Observer Observer
}

// Sender is the delivery loop. Create it with New, run it with Run.
type Sender struct {
	cfg       *config.Config
	store     *store.Store
	log       *slog.Logger
	suppress  func(ctx context.Context, partner, channel, recipient string) (bool, error)
	observer  Observer
	retryBase time.Duration
	retryCap  time.Duration
	clock     clock.Clock
	// claimBatch bounds the messages claimed in one transaction.
	claimBatch int

	channels  []*channel
	gate      *jobGate
	listening func()

	mu       sync.Mutex
	inflight map[store.LeaseRef]struct{} // claimed, outcome not yet recorded
	perJob   map[int64]int               // inflight, counted by job

	waiting waitingReason // while start-up recovery waits for space (diskwait.go)
}

// New builds the channel drivers from the configuration. A channel whose
// settings cannot work (a body template that does not parse, an unknown TLS
// mode) is an error naming the field, such as "channel[1].body: ...".
func New(opts Options) (*Sender, error) {
	if opts.Config == nil || opts.Store == nil {
		return nil, errors.New("sender: Config and Store are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		cfg:        opts.Config,
		store:      opts.Store,
		log:        logger.With("component", "sender"),
		suppress:   opts.Suppressed,
		observer:   opts.Observer,
		retryBase:  opts.RetryBase,
		retryCap:   opts.RetryCap,
		clock:      opts.clock,
		claimBatch: 256,
		inflight:   map[store.LeaseRef]struct{}{},
		perJob:     map[int64]int{},
		gate:       newJobGate(opts.Store),
		listening:  opts.listening,
	}
	if opts.Store.Postgres() {
		// Several nodes share the queue: what one node claimed ahead of its
		// workers is work the others cannot take, and at the end of a job
		// they idle while it drains. A quarter of SQLite's batch keeps
		// that tail short (BENCHMARKS.md, BenchmarkScaleOutNodes); a claim
		// on PostgreSQL is one statement.
		s.claimBatch = 64
	}
	if s.retryBase <= 0 {
		s.retryBase = time.Second
	}
	if s.retryCap <= 0 {
		s.retryCap = time.Hour
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	for i := range opts.Config.Channels {
		cc := &opts.Config.Channels[i]
		d, err := newDriver(opts, i, cc)
		if err != nil {
			return nil, err
		}
		ch := newChannel(s, cc, d)
		if opts.Store.Postgres() && cc.Rate > 0 {
			// Several nodes may send on this channel: the rate is their total.
			ch.shared = newSharedRate(opts.Store, ch.log, cc.Name, cc.Rate, ch.throttle.burst)
		}
		s.channels = append(s.channels, ch)
	}
	return s, nil
}

// newDriver builds the driver of the i-th configured channel.
func newDriver(opts Options, i int, cc *config.Channel) (Driver, error) {
	field := fmt.Sprintf("channel[%d]", i)
	switch cc.Type {
	case config.ChannelOutbox:
		return newOutboxDriver(opts.Config.OutboxDir(), cc.Name), nil
	case config.ChannelHTTP:
		d, err := newHTTPDriver(field, cc, opts.HTTPClient, opts.HTTPTLSConfig)
		if err != nil {
			return nil, err
		}
		return d, nil
	case config.ChannelSMTP:
		d, err := newSMTPDriver(field, cc, opts.SMTPTLSConfig, opts.UnsubscribeURL)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s.type: %q is not one of smtp, http, outbox", field, cc.Type)
}

// ChannelRate is a channel's sending rate as configured and as its
// provider currently allows it.
type ChannelRate struct {
	Channel    string
	Configured float64 // messages per second; 0 is unlimited
	Effective  float64 // messages per second now; 0 is unlimited
	Throttled  bool    // a throttle signal of the provider lowered Effective, which is recovering
	Slowdowns  int     // the provider's throttle signals that cut the rate, since start
}

// Rates returns every channel's configured and effective rate, in the
// configuration's order; it is cheap enough for every /metrics scrape.
func (s *Sender) Rates() []ChannelRate {
	now := s.clock.Now()
	out := make([]ChannelRate, 0, len(s.channels))
	for _, ch := range s.channels {
		eff, throttled, cuts := ch.throttle.state(now)
		out = append(out, ChannelRate{Channel: ch.cfg.Name, Configured: ch.throttle.rate, Effective: eff,
			Throttled: throttled, Slowdowns: cuts})
	}
	return out
}

// Nudge wakes every channel's dispatcher now, for example after new
// messages were queued or a job was paused, resumed or cancelled; it never
// blocks.
func (s *Sender) Nudge() {
	s.gate.forget()
	s.wake()
}

// wake wakes every channel's dispatcher; it never blocks.
func (s *Sender) wake() {
	for _, ch := range s.channels {
		select {
		case ch.wake <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx is cancelled. At start it returns expired leases to
// the queue and warns about channels whose server does not answer. On stop it
// claims nothing more, lets in-flight deliveries finish within
// sender.shutdown_grace, returns what it claimed but did not finish to the
// queue, and returns nil.
func (s *Sender) Run(ctx context.Context) error {
	j, err := openJournal(s.cfg.DeliveryLogDir())
	if err != nil {
		return fmt.Errorf("cannot start sender: %w", err)
	}
	if err := s.recoverWhenSpace(ctx, j); err != nil { // diskwait.go: a full disk waits
		j.close()
		if ctx.Err() != nil {
			return nil // stopped right after the start: not a failure
		}
		return fmt.Errorf("cannot start sender: %w", err)
	}
	s.probe(ctx)
	// A job queued, resumed or retried wakes the dispatchers at once: the
	// first message of a dropped file does not wait for the poll interval.
	defer s.store.OnJobsQueued(s.wake)()

	// Deliveries outlive ctx by the shutdown grace; the committer outlives
	// the deliveries so every outcome reaches the database.
	deliverCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	col := newCommitter(context.WithoutCancel(ctx), s, j)
	go col.run()

	var workers, loops sync.WaitGroup
	for _, ch := range s.channels {
		ch.start(ctx, deliverCtx, col, &loops, &workers)
	}
	// Jobs queued by other nodes (PostgreSQL) wake the dispatchers as
	// this node's own do.
	loops.Go(func() { s.store.ListenQueue(ctx, s.listening) })
	loops.Go(func() { s.maintain(ctx, col) })

	<-ctx.Done()
	loops.Wait() // dispatchers stop claiming
	finished := make(chan struct{})
	go func() { workers.Wait(); close(finished) }()
	grace := s.cfg.Sender.ShutdownGrace.D()
	select {
	case <-finished:
	case <-time.After(grace):
		s.log.Warn("shutdown grace ran out; abandoning in-flight deliveries (they will be sent again)", "grace", grace)
		abandon()
		<-finished
	}
	col.close()

	left := s.unfinished()
	if len(left) > 0 {
		if err := s.store.ReleaseMessages(context.WithoutCancel(ctx), left); err != nil {
			s.log.Error("cannot return unsent messages to the queue; their leases will expire", "count", len(left), "err", err)
		} else {
			s.log.Info("returned unsent messages to the queue", "count", len(left))
		}
	}
	for _, ch := range s.channels {
		ch.close()
	}
	return nil
}

// probe warns about channels whose server does not answer; delivery goes
// on regardless, retrying as usual.
func (s *Sender) probe(ctx context.Context) {
	for _, ch := range s.channels {
		p, ok := ch.driver.(Prober)
		if !ok {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.Probe(pctx); err != nil {
			ch.log.Warn("channel does not answer at start; messages will be retried", "err", err)
		}
		cancel()
	}
}

// maintain periodically returns expired leases to the queue and finishes
// jobs whose last message ended elsewhere (cancelled, resumed empty).
// This process's own messages are not requeued, however late: those whose
// outcome is in the delivery log are first written to the database by the
// committer, and those still in flight are held (a provider call that
// outlives its lease on a starved machine would otherwise be sent again
// by the next claim). Leases are for a sender that died.
func (s *Sender) maintain(ctx context.Context, col *committer) {
	every := min(s.cfg.Sender.Lease.D()/2, 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.clock.Now()
		// Held before the apply: an outcome logged after this snapshot
		// was held in it; one logged before it is applied now.
		held := s.unfinished()
		if !col.apply() {
			continue // the committer retries; requeue once it has written
		}
		if n, err := s.store.RequeueExpiredLeasesExcept(ctx, now, held); err != nil {
			s.log.Error("cannot requeue expired leases", "err", err)
		} else if n > 0 {
			s.log.Warn("returned messages with expired leases to the queue", "count", n)
			s.Nudge()
		}
		if _, err := s.store.FinishJobs(ctx, now); err != nil {
			s.log.Error("cannot finish jobs", "err", err)
		}
	}
}

// track records claims as held by this process until their outcome is
// written.
func (s *Sender) track(cs []store.Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range cs {
		s.inflight[store.LeaseRef{ID: cs[i].ID, Attempt: cs[i].Attempt}] = struct{}{}
		s.perJob[cs[i].JobID]++
	}
}

// untrack forgets claims whose outcome was written and returns the jobs
// that have no claim left in this process: only those can have ended, so
// only those are worth checking (the job's last claim of a batch, not every
// commit).
func (s *Sender) untrack(outs []store.Outcome) (idle []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range outs {
		ref := store.LeaseRef{ID: o.ID, Attempt: o.Attempt}
		if _, ok := s.inflight[ref]; !ok {
			continue
		}
		delete(s.inflight, ref)
		if s.perJob[o.JobID]--; s.perJob[o.JobID] <= 0 {
			delete(s.perJob, o.JobID)
			if !slices.Contains(idle, o.JobID) {
				idle = append(idle, o.JobID)
			}
		}
	}
	return idle
}

// unfinished returns the claims still held.
func (s *Sender) unfinished() []store.LeaseRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.LeaseRef, 0, len(s.inflight))
	for r := range s.inflight {
		out = append(out, r)
	}
	return out
}

// recover settles what a previous run left: outcomes in the delivery log
// are written to the database, deliveries recorded but not settled (by a
// version before the log) are sent, expired leases return to the queue, and
// jobs with nothing left are finished.
func (s *Sender) recover(ctx context.Context, j *journal) error {
	if err := s.replay(ctx, j); err != nil {
		return err
	}
	if err := s.store.SettleAllDeliveries(ctx); err != nil {
		return err
	}
	// After the replay: a requeue closes the claims the log's outcomes
	// belong to.
	if n, err := s.store.TakeBackPreviousLives(ctx, s.clock.Now()); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("returned the messages this node's previous life held to the queue", "count", n)
	}
	if n, err := s.store.RequeueExpiredLeases(ctx, s.clock.Now()); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("returned messages with expired leases to the queue", "count", n)
	}
	_, err := s.store.FinishJobs(ctx, s.clock.Now())
	return err
}

// replay writes the outcomes a previous run logged but did not get into the
// database (it was killed) and removes their segments. A damaged segment is
// set aside as <n>.log.damaged with an error in the log: its messages are
// sent again once their leases expire, under the same idempotency keys,
// rather than the sender refusing to start.
func (s *Sender) replay(ctx context.Context, j *journal) error {
	segs, err := j.segments()
	if err != nil {
		return err
	}
	var outs []store.Outcome
	var done []string
	for _, p := range segs {
		o, err := readSegment(p)
		if err != nil {
			s.log.Error("damaged delivery log segment set aside; its messages will be sent again when their leases expire", "err", err)
			if err := os.Rename(p, p+".damaged"); err != nil {
				return fmt.Errorf("cannot set aside damaged delivery log segment: %w", err)
			}
			continue
		}
		outs = append(outs, o...)
		done = append(done, p)
	}
	if len(outs) > 0 {
		if err := s.store.CompleteMessages(ctx, outs); err != nil {
			return fmt.Errorf("cannot apply the delivery log: %w", err)
		}
		s.log.Info("recorded delivery outcomes the last run had logged but not stored", "count", len(outs))
	}
	return removeSegments(done)
}
