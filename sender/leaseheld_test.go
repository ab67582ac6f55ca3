package sender

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// A provider call that outlives its message's lease (a starved machine,
// a slow provider) is not sent again by the next claim: the periodic
// requeue takes back the leases of a sender that died, not this one's.
// A message claimed by "another process" that died shows the requeue ran.
func TestALiveSendersCallPastItsLeaseIsNotSentTwice(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	cc := fakeChannel()
	cc.Concurrency = 5 // four held in their calls, one free for the dead process's message
	cc.Timeout = config.Duration(time.Minute)
	cfg := testConfig(t, cc)
	cfg.Sender.Lease = config.Duration(time.Second) // the shortest allowed: maintain runs every 500 ms
	st := openStore(t, cfg)
	dead := queueJob(t, st, "beta", store.SourceFile, store.PriorityBulk, "sms", 1)
	orphan, err := st.ClaimMessages(ctx, dead.ID, "sms", clk.Now(), time.Second, 1)
	if err != nil || len(orphan) != 1 {
		t.Fatalf("claim of the dead process: %v, %v", orphan, err)
	}
	live := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 4)

	release := make(chan struct{})
	var inCall atomic.Int32
	d := &fakeDriver{now: clk.Now, hold: func(ctx context.Context, n int) {
		if n > 4 {
			return
		}
		inCall.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
	}}
	s := newSender(t, cfg, st, withClock(clk))
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "the 4 live messages in their provider calls", func() bool { return inCall.Load() == 4 })

	clk.Advance(5 * time.Second) // every lease has run out
	waitFor(t, 30*time.Second, "the dead process's message requeued and sent", func() bool {
		for _, m := range d.Sent() {
			if m.ID == orphan[0].ID {
				return true
			}
		}
		return false
	})
	close(release)
	j := waitJob(t, st, live.ID, store.JobDone, 30*time.Second)
	calls := map[int64]int{}
	for _, m := range d.Sent() {
		calls[m.ID]++
	}
	for id, n := range calls {
		if n != 1 {
			t.Errorf("message %d went to the provider %d times", id, n)
		}
	}
	if len(calls) != 5 || j.Counts[store.MsgSent] != 4 {
		t.Errorf("provider saw %d messages, the live job %v; want 5 and 4 sent", len(calls), j.Counts)
	}
}
