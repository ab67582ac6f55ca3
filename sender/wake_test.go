package sender

import (
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// A job queued while the dispatcher sleeps wakes it: the poll interval here
// is an hour, so only the store's signal can.
func TestAQueuedJobWakesTheSenderWithoutPolling(t *testing.T) {
	cfg := testConfig(t, fakeChannel())
	cfg.Sender.PollInterval = config.Duration(time.Hour)
	st := openStore(t, cfg)
	s := newSender(t, cfg, st)
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	time.Sleep(50 * time.Millisecond) // the dispatcher found nothing and sleeps

	j := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 3)
	waitJob(t, st, j.ID, store.JobDone, 5*time.Second)

	if d.Count() != 3 {
		t.Errorf("driver sent %d, want 3", d.Count())
	}
}
