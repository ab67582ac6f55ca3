package sender

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// pgNodes opens n stores on one fresh PostgreSQL schema, standing for n
// nodes sharing a database, each registered as a node. It skips without
// a test database, and fails then on CI.
func pgNodes(t *testing.T, n int) []*store.Store {
	t.Helper()
	storetest.PostgresPassOnly(t)
	dsn := pgtest.Schema(t)
	out := make([]*store.Store, n)
	for i := range out {
		st, err := store.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if _, err := st.RegisterNode(context.Background(), fmt.Sprintf("node%d", i), "", time.Now()); err != nil {
			t.Fatal(err)
		}
		out[i] = st
	}
	return out
}

// Three nodes send on one channel of 100 messages a second: the provider
// never sees more than the rate and its burst in any second (plus the few
// tokens each node holds and its workers have in flight), where three
// nodes each keeping the rate alone would send three times that.
func TestTheRateOfAChannelIsTheTotalOfThreeNodes(t *testing.T) {
	const (
		rate, burst = 100, 20
		total       = 600
	)
	nodes := pgNodes(t, 3)
	p := newProviderSink(t, nil)
	cc := httpChannel(p.URL)
	cc.Rate, cc.Burst, cc.Concurrency = rate, burst, 4
	var senders []*Sender
	for _, st := range nodes {
		cfg := testConfig(t, cc)
		senders = append(senders, newSender(t, cfg, st))
	}
	var jobs []store.Job
	for i := range 3 {
		jobs = append(jobs, queueJob(t, nodes[i], fmt.Sprintf("p%d", i), store.SourceFile, store.PriorityBulk, "sms", total/3))
	}
	for _, s := range senders {
		start(t, s)
	}
	for _, j := range jobs {
		waitJob(t, nodes[0], j.ID, store.JobDone, 2*time.Minute)
	}
	reqs := p.Requests()
	if len(reqs) != total {
		t.Fatalf("provider got %d requests, want %d", len(reqs), total)
	}
	at := make([]time.Time, len(reqs))
	for i, r := range reqs {
		at[i] = r.At
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	// The ceiling: rate and burst, plus per node the tokens it may hold
	// (a fiftieth of a second's) and the deliveries its workers may have
	// in flight, which a busy machine can make arrive together.
	const slack = 3 * (2 + 4)
	worst, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Second {
			j++
		}
		worst = max(worst, i-j+1)
	}
	if worst > rate+burst+slack {
		t.Fatalf("the provider saw %d requests within one second; the channel's rate is %d/s, burst %d", worst, rate, burst)
	}
	t.Logf("busiest second: %d requests (rate %d/s, burst %d); %d requests in %s", worst, rate, burst, len(at), at[len(at)-1].Sub(at[0]))
}

// A job queued on node A wakes node B's sender, whose clock stands still
// so that its poll timer never fires: only the NOTIFY can wake it.
func TestAJobQueuedOnOneNodeWakesAnotherNodesSender(t *testing.T) {
	nodes := pgNodes(t, 2)
	a, b := nodes[0], nodes[1]
	cfg := testConfig(t, fakeChannel())
	cfg.Sender.PollInterval = config.Duration(time.Hour)
	fc := newFakeClock()
	var listening atomic.Bool
	s := newSender(t, cfg, b, withClock(fc), func(o *Options) { o.listening = func() { listening.Store(true) } })
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "node B to listen and its dispatcher to sleep", func() bool { return listening.Load() && fc.Sleepers() > 0 })

	j := queueJob(t, a, "alpha", store.SourceFile, store.PriorityBulk, "sms", 3)
	waitJob(t, b, j.ID, store.JobDone, 30*time.Second)
	if d.Count() != 3 {
		t.Errorf("node B's driver sent %d, want 3", d.Count())
	}
}

// An API send queued through node A overtakes node B's claimed bulk
// backlog as it would one queued on B itself: A's NOTIFY wakes B's
// dispatcher (whose poll never comes), which claims it into the urgent
// lane. See TestAPIMessageOvertakesAnAlreadyClaimedBulkBacklog.
func TestAnAPIMessageQueuedOnOneNodeOvertakesAnotherNodesBulkBacklog(t *testing.T) {
	nodes := pgNodes(t, 2)
	a, b := nodes[0], nodes[1]
	cc := fakeChannel()
	cc.Concurrency = 4
	cfg := testConfig(t, cc)
	cfg.Sender.PollInterval = config.Duration(time.Hour)
	bulk := queueJob(t, b, "alpha", store.SourceFile, store.PriorityBulk, "sms", 2000)
	var listening atomic.Bool
	s := newSender(t, cfg, b, func(o *Options) { o.listening = func() { listening.Store(true) } })
	ch := s.channels[0]
	d := &laneDriver{bulkJob: bulk.ID, held: ch.concurrency, release: make(chan struct{}), urgentIn: make(chan struct{})}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "node B to listen and its bulk feed to fill", func() bool {
		return listening.Load() && len(ch.feed) == cap(ch.feed) && d.entered() >= ch.concurrency && s.inflightCount() >= 2*s.claimBatch
	})

	api := queueJob(t, a, "beta", store.SourceAPI, store.PriorityTransactional, "sms", 1)
	waitFor(t, 30*time.Second, "the API message to be claimed by node B", func() bool { return len(ch.urgent) == 1 })
	giveUp := time.AfterFunc(20*time.Second, func() { d.once.Do(func() { close(d.urgentIn) }) })
	defer giveUp.Stop()
	close(d.release)
	waitJob(t, b, api.ID, store.JobDone, 60*time.Second)
	before := 0
	for _, job := range d.order() {
		if job == api.ID {
			break
		}
		before++
	}
	if limit := 2*ch.concurrency - 1; before > limit {
		t.Errorf("%d bulk messages reached the provider before the API message; want at most %d", before, limit)
	}
}

// A worker on PostgreSQL takes its next message only once the outcome of
// its last one is in the database, where every node sees it: a node killed then
// leaves the other nodes at most its messages in flight to send again, not
// the outcomes still waiting in its own delivery log (which it will never
// replay if it does not come back). One worker sends through node B; before
// each send, node A must already see every earlier message as sent.
func TestAWorkersOutcomeIsInTheSharedDatabaseBeforeItsNextSend(t *testing.T) {
	nodes := pgNodes(t, 2)
	a, b := nodes[0], nodes[1]
	// An http channel (whose driver the fake replaces): an outbox
	// channel does not wait for the database.
	cc := config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: "http://127.0.0.1:1/v1/sms", Concurrency: 1}
	cfg := testConfig(t, cc)
	s := newSender(t, cfg, b)
	d := &fakeDriver{}
	var early []string
	var mu sync.Mutex
	d.fail = func(m *store.Message) error {
		for _, prev := range d.Sent() {
			pm, err := a.Message(context.Background(), prev.ID)
			if err != nil {
				return err
			}
			// Sent, or still "sending" but marked delivered (sent_at),
			// which a lease takeover settles as sent.
			if pm.Status != store.MsgSent && pm.SentAt.IsZero() {
				mu.Lock()
				early = append(early, fmt.Sprintf("message %d sent while node A saw message %d as %q, not delivered", m.ID, prev.ID, pm.Status))
				mu.Unlock()
			}
		}
		return nil
	}
	useDriver(s, "sms", d)
	j := queueJob(t, a, "alpha", store.SourceFile, store.PriorityBulk, "sms", 20)
	start(t, s)
	waitJob(t, a, j.ID, store.JobDone, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Errorf("%d sends before the last outcome was in the database, e.g. %s", len(early), early[0])
	}
	if d.Count() != 20 {
		t.Errorf("sent %d, want 20", d.Count())
	}
}
