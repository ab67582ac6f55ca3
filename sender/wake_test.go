package sender

import (
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// A job queued while the dispatcher sleeps wakes it: the sender's clock
// stands still, so its poll timer never fires and only the store's signal
// can.
func TestAQueuedJobWakesTheSenderWithoutPolling(t *testing.T) {
	cfg := testConfig(t, fakeChannel())
	cfg.Sender.PollInterval = config.Duration(time.Hour)
	st := openStore(t, cfg)
	fc := newFakeClock()
	s := newSender(t, cfg, st, withClock(fc))
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "the dispatcher to find nothing and sleep", func() bool { return fc.Sleepers() > 0 })

	j := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 3)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)

	if d.Count() != 3 {
		t.Errorf("driver sent %d, want 3", d.Count())
	}
}
