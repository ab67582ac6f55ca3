package sender

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The dispatcher has claimed bulk batches and is blocked handing them to a
// full feed, every worker held inside the provider; an API send queued then
// must not wait for that backlog (two batches, ~500 messages). Ahead of it
// may go only the deliveries in progress (one per worker) and, at the
// moment it is taken, at most one bulk message per other worker.
//
// The driver records the order in which messages reach it. After the
// release, a bulk message beyond the first ones waits at the provider until
// the API message has arrived there (or 20 s passed), so the count does not
// depend on how long the machine takes to run the API message's worker.
func TestAPIMessageOvertakesAnAlreadyClaimedBulkBacklog(t *testing.T) {
	cc := fakeChannel()
	cc.Concurrency = 4
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	bulk := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 2000)
	s := newSender(t, cfg, st)
	ch := s.channels[0]
	d := &laneDriver{bulkJob: bulk.ID, held: ch.concurrency, release: make(chan struct{}), urgentIn: make(chan struct{})}
	useDriver(s, "sms", d)
	start(t, s)
	// Every worker holds a message in the provider, the feed is full and the
	// dispatcher holds the rest of its second batch.
	waitFor(t, 30*time.Second, "the bulk feed to fill", func() bool {
		return len(ch.feed) == cap(ch.feed) && d.entered() >= ch.concurrency && s.inflightCount() >= 2*s.claimBatch
	})

	api := queueJob(t, st, "beta", store.SourceAPI, store.PriorityTransactional, "sms", 1)
	s.Nudge()
	waitFor(t, 30*time.Second, "the API message to be claimed", func() bool { return len(ch.urgent) == 1 })
	giveUp := time.AfterFunc(20*time.Second, func() { d.once.Do(func() { close(d.urgentIn) }) })
	defer giveUp.Stop()
	close(d.release)
	waitJob(t, st, api.ID, store.JobDone, 60*time.Second)

	before := 0
	for _, job := range d.order() {
		if job == api.ID {
			break
		}
		before++
	}
	if limit := 2*ch.concurrency - 1; before > limit {
		t.Errorf("%d bulk messages reached the provider before the API message; want at most %d (concurrency %d, batch %d)",
			before, limit, ch.concurrency, s.claimBatch)
	}
}

// laneDriver holds every bulk message until release; after it, bulk
// messages beyond the first held ones wait until a message of another job
// (the urgent one) has arrived.
type laneDriver struct {
	bulkJob  int64
	held     int
	release  chan struct{}
	urgentIn chan struct{}
	once     sync.Once

	mu   sync.Mutex
	jobs []int64 // the job of each message, in arrival order
}

func (d *laneDriver) Send(ctx context.Context, m *store.Message) (string, error) {
	d.mu.Lock()
	d.jobs = append(d.jobs, m.JobID)
	n := len(d.jobs)
	d.mu.Unlock()
	if m.JobID != d.bulkJob {
		d.once.Do(func() { close(d.urgentIn) })
		return "ok", nil
	}
	wait := d.release
	if n > d.held {
		wait = d.urgentIn
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "ok", nil
}

func (d *laneDriver) entered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.jobs)
}

func (d *laneDriver) order() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int64(nil), d.jobs...)
}

// inflightCount is how many claims the sender holds.
func (s *Sender) inflightCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight)
}
