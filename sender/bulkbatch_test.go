package sender

import (
	"context"
	"testing"

	"github.com/dropgate/dropgate/store"
)

// While transactional messages were claimed within urgentRecent, a bulk
// claim takes half a batch, so an API send's claim waits behind a shorter
// transaction; a bulk job alone is claimed in whole batches.
func TestBulkClaimsAreHalfSizedWhileTransactionalSendsAreRecent(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	cfg := testConfig(t, httpChannel("http://127.0.0.1:1/v1/sms"))
	st := openStore(t, cfg)
	s := newSender(t, cfg, st, withClock(clk))
	ch := s.channels[0]
	queueJob(t, st, "acme", store.SourceFile, store.PriorityBulk, ch.cfg.Name, 2*ch.batch)
	queueJob(t, st, "acme", store.SourceAPI, store.PriorityBulk, ch.cfg.Name, 1)
	jobs, err := st.RunnableJobs(ctx, ch.cfg.Name, clk.Now())
	if err != nil || len(jobs) != 2 {
		t.Fatalf("runnable jobs = %+v, %v", jobs, err)
	}
	var bulk, api []store.RunnableJob
	for _, j := range jobs {
		if j.Urgent {
			api = append(api, j)
		} else {
			bulk = append(bulk, j)
		}
	}

	if got := ch.bulkBatch(clk.Now()); got != ch.batch {
		t.Fatalf("bulk batch with no transactional send = %d, want %d", got, ch.batch)
	}
	claims, ok := ch.claim(ctx, api, ch.batch)
	if !ok || len(claims) != 1 || !ch.handUrgent(ctx, claims) {
		t.Fatalf("transactional claim = %d, %v", len(claims), ok)
	}
	n := ch.bulkBatch(clk.Now())
	if n != ch.batch/2 {
		t.Fatalf("bulk batch right after a transactional claim = %d, want %d", n, ch.batch/2)
	}
	if claims, ok := ch.claim(ctx, bulk, n); !ok || len(claims) != ch.batch/2 {
		t.Errorf("bulk claim = %d messages, want %d", len(claims), ch.batch/2)
	}
	clk.Advance(urgentRecent)
	if got := ch.bulkBatch(clk.Now()); got != ch.batch {
		t.Errorf("bulk batch %v after the transactional claim = %d, want the whole %d", urgentRecent, got, ch.batch)
	}
}
