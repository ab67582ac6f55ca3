package sender

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// An apply writes its outcomes in transactions of at most applyChunk, so
// that an API send waiting for the writer goes between two of them
// (store.writerGate) instead of after all of a large batch; every outcome
// is stored.
func TestApplyWritesOutcomesInChunks(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	st := openStore(t, cfg)
	n := 2*applyChunk + 44
	job := queueJob(t, st, "acme", store.SourceFile, store.PriorityBulk, "sms", n)
	cs, err := st.ClaimMessages(ctx, job.ID, "sms", time.Now(), time.Minute, n)
	if err != nil || len(cs) != n {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	j, err := openJournal(cfg.DeliveryLogDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newCommitter(ctx, newSender(t, cfg, st), j)
	var sizes []int
	c.complete = func(ctx context.Context, outs []store.Outcome) error {
		sizes = append(sizes, len(outs))
		return st.CompleteMessages(ctx, outs)
	}
	for _, cl := range cs {
		c.pending = append(c.pending, store.Outcome{ID: cl.ID, JobID: job.ID, Attempt: cl.Attempt, Kind: store.OutcomeSent, ProviderID: "p", At: time.Now()})
	}
	if !c.apply() {
		t.Fatal("apply failed")
	}
	if want := []int{applyChunk, applyChunk, 44}; !slices.Equal(sizes, want) {
		t.Fatalf("transactions of %v outcomes; want %v", sizes, want)
	}
	for _, cl := range cs {
		if m, err := st.Message(ctx, cl.ID); err != nil || m.Status != store.MsgSent {
			t.Fatalf("message %d = %q, %v; want sent", cl.ID, m.Status, err)
		}
	}
	j.close()
}
