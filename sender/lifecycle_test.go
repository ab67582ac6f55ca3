package sender

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

func TestPausedJobWaitsUntilResumed(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, fakeChannel())
	st := openStore(t, cfg)
	paused := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 20)
	other := queueJob(t, st, "beta", store.SourceFile, store.PriorityBulk, "sms", 20)
	if _, err := st.PauseJob(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	s := newSender(t, cfg, st)
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	waitJob(t, st, other.ID, store.JobDone, 30*time.Second)
	if j, _ := st.Job(ctx, paused.ID); j.Status != store.JobPaused || j.Counts[store.MsgQueued] != 20 {
		t.Fatalf("paused job = %+v", j)
	}
	if _, err := st.ResumeJob(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	s.Nudge()
	if j := waitJob(t, st, paused.ID, store.JobDone, 30*time.Second); j.Counts[store.MsgSent] != 20 {
		t.Fatalf("resumed job = %+v", j)
	}
}

func TestPauseHoldsBackMessagesAlreadyClaimed(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, fakeChannel())
	st := openStore(t, cfg)
	j := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 600)
	s := newSender(t, cfg, st)
	release := make(chan struct{})
	d := &fakeDriver{hold: gateAt(11, release)}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "10 messages to go out", func() bool { return d.Count() >= 10 })
	if _, err := st.PauseJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	s.Nudge() // as the admin API does after a job action
	close(release)
	// The workers held at the gate finish; everything else claimed goes back.
	waitFor(t, 60*time.Second, "claimed messages to return to the queue", func() bool {
		got, _ := st.Job(ctx, j.ID)
		return got.Counts[store.MsgSending] == 0
	})
	got, _ := st.Job(ctx, j.ID)
	if sent := got.Counts[store.MsgSent]; sent > 10+4 || got.Counts[store.MsgQueued] != 600-sent || got.Status != store.JobPaused {
		t.Errorf("after pause: %+v; want at most 14 sent (10 plus the 4 in the workers' hands), the rest queued", got)
	}
}

func TestCancelledJobSendsNoMoreAndFinishes(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, fakeChannel())
	st := openStore(t, cfg)
	j := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 600)
	s := newSender(t, cfg, st)
	release := make(chan struct{})
	d := &fakeDriver{hold: gateAt(11, release)}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "10 messages to go out", func() bool { return d.Count() >= 10 })
	if _, err := st.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	s.Nudge()
	close(release)
	var got store.Job
	waitFor(t, 60*time.Second, "the cancelled job to finish", func() bool {
		got, _ = st.Job(ctx, j.ID)
		return !got.FinishedAt.IsZero()
	})
	sent := got.Counts[store.MsgSent]
	if got.Status != store.JobCancelled || sent > 14 || got.Counts[store.MsgCancelled] != 600-sent || d.Count() != sent {
		t.Errorf("cancelled job = %+v, driver saw %d", got, d.Count())
	}
}

func TestRetryJobSendsFailedMessagesAgain(t *testing.T) {
	ctx := context.Background()
	var refuse sync.Mutex
	refusing := true
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		refuse.Lock()
		defer refuse.Unlock()
		if refusing {
			http.Error(w, "account suspended", http.StatusForbidden)
			return
		}
		io.WriteString(w, `{"id": "ok"}`)
	})
	cfg := testConfig(t, httpChannel(p.URL))
	st := openStore(t, cfg)
	j := queueJob(t, st, "acme", store.SourceFile, store.PriorityBulk, "sms", 5)
	s := newSender(t, cfg, st)
	start(t, s)
	if got := waitJob(t, st, j.ID, store.JobDone, 30*time.Second); got.Counts[store.MsgFailed] != 5 {
		t.Fatalf("job = %+v", got)
	}
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	if _, err := st.RetryJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	s.Nudge()
	var got store.Job
	waitFor(t, 30*time.Second, "the retried job to finish", func() bool {
		got, _ = st.Job(ctx, j.ID)
		return got.Status == store.JobDone && got.Counts[store.MsgSent] == 5
	})
	if n := len(p.Requests()); n != 10 {
		t.Errorf("provider got %d requests, want 10", n)
	}
}

func TestExpiredLeasesReturnToTheQueueAtStartAndWhileRunning(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, fakeChannel())
	cfg.Sender.Lease = config.Duration(time.Second)
	st := openStore(t, cfg)
	crashed := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 3)
	// A sender that died holding leases, long expired.
	if cs, err := st.ClaimMessages(ctx, crashed.ID, "sms", time.Now(), -time.Minute, 10); err != nil || len(cs) != 3 {
		t.Fatalf("claim = %v, %v", cs, err)
	}
	fc := newFakeClock()
	s := newSender(t, cfg, st, withClock(fc))
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	waitJob(t, st, crashed.ID, store.JobDone, 30*time.Second)

	// Another worker that hangs while this sender runs: its leases expire
	// a little later and the periodic sweep returns them. Its messages are
	// due in an hour of the sender's clock, which stands still until the
	// "hung" worker holds them, so the running sender cannot claim them
	// first.
	due := fc.Now().Add(time.Hour)
	hung := queueMessages(t, st, "beta", store.SourceFile, store.PriorityBulk, []store.Message{
		{Channel: "sms", Recipient: "+15550000001", Body: "a", NextAttemptAt: due},
		{Channel: "sms", Recipient: "+15550000002", Body: "b", NextAttemptAt: due}})
	if cs, err := st.ClaimMessages(ctx, hung.ID, "sms", due, 300*time.Millisecond, 10); err != nil || len(cs) != 2 {
		t.Fatalf("claim = %v, %v", cs, err)
	}
	fc.Advance(time.Hour + time.Second) // past the hung worker's leases
	got := waitJob(t, st, hung.ID, store.JobDone, 30*time.Second)
	if got.Counts[store.MsgSent] != 2 || d.Count() != 5 {
		t.Errorf("job = %+v, driver sent %d", got, d.Count())
	}
	m, _ := st.Message(ctx, d.Sent()[4].ID)
	if m.Attempts != 2 {
		t.Errorf("a message whose lease expired was sent with attempts = %d, want 2 (the lost attempt counts)", m.Attempts)
	}
}

func TestStopMidSendThenRestartDeliversEachMessageOnce(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[string]int{}
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		time.Sleep(time.Millisecond) // a provider that takes a moment
		mu.Lock()
		seen[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		io.WriteString(w, `{"id": "x"}`)
	})
	cc := httpChannel(p.URL)
	cc.Concurrency = 8
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	j := queueJob(t, st, "acme", store.SourceFile, store.PriorityBulk, "sms", 800)

	stop := start(t, newSender(t, cfg, st))
	waitFor(t, 60*time.Second, "300 deliveries", func() bool { return len(p.Requests()) >= 300 })
	stop()
	mid, _ := st.Job(ctx, j.ID)
	if mid.Counts[store.MsgSending] != 0 || mid.Counts[store.MsgSent] != len(p.Requests()) {
		t.Fatalf("after a graceful stop: %+v with %d requests seen; want nothing leased and every request recorded as sent", mid, len(p.Requests()))
	}
	start(t, newSender(t, cfg, st))
	done := waitJob(t, st, j.ID, store.JobDone, 120*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 800 || done.Counts[store.MsgSent] != 800 {
		t.Fatalf("provider saw %d keys, job = %+v", len(seen), done)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %s delivered %d times", k, n)
		}
	}
}

func TestStopAbandonsADeliveryThatOutlivesTheGrace(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, fakeChannel())
	cfg.Sender.ShutdownGrace = config.Duration(100 * time.Millisecond)
	st := openStore(t, cfg)
	j := queueJob(t, st, "alpha", store.SourceAPI, store.PriorityTransactional, "sms", 1)
	s := newSender(t, cfg, st)
	never := make(chan struct{})
	reached := make(chan struct{})
	d := &fakeDriver{hold: func(ctx context.Context, n int) {
		close(reached)
		gateAt(1, never)(ctx, n)
	}}
	useDriver(s, "sms", d)
	stop := start(t, s)
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery did not reach the driver")
	}
	stop()
	got, _ := st.Job(ctx, j.ID)
	if got.Counts[store.MsgQueued] != 1 {
		t.Errorf("after stop: %+v; want the abandoned message queued again", got)
	}
}

func TestSuppressedRecipientIsNotSent(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, fakeChannel())
	st := openStore(t, cfg)
	j, ids, err := st.CreateJob(ctx, store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{
		{Channel: "sms", Recipient: "+1000", Body: "x"}, {Channel: "sms", Recipient: "+2000", Body: "y"}})
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	var mu sync.Mutex
	s := newSender(t, cfg, st, func(o *Options) {
		o.Suppressed = func(_ context.Context, partner, channel, recipient string) (bool, error) {
			mu.Lock()
			asked = append(asked, partner+"/"+channel+"/"+recipient)
			mu.Unlock()
			return recipient == "+2000", nil
		}
	})
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	got := waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	if got.Counts[store.MsgSent] != 1 || got.Counts[store.MsgSuppressed] != 1 || d.Count() != 1 || d.Sent()[0].ID != ids[0] {
		t.Errorf("job = %+v, driver saw %+v", got, d.Sent())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[0] != "acme/sms/+1000" && asked[1] != "acme/sms/+1000" {
		t.Errorf("suppression asked %v", asked)
	}
}

func TestMessagesPastTheirMaxAgeFailAsExpired(t *testing.T) {
	ctx := context.Background()
	cc := fakeChannel()
	cc.MaxAge = config.Duration(time.Millisecond)
	cfg := testConfig(t, cc, config.Channel{Name: "other", Type: config.ChannelOutbox})
	st := openStore(t, cfg)
	_, ids, err := st.CreateJob(ctx, store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{
		{Channel: "sms", Recipient: "+1", Body: "too late for the channel's max age"},
		{Channel: "other", Recipient: "+1", Body: "past its own expiry", ExpiresAt: time.Now()},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sender's clock is a minute ahead: both are past their max age.
	s := newSender(t, cfg, st, withClock(newFakeClock()))
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	useDriver(s, "other", d)
	start(t, s)
	for _, id := range ids {
		var m store.Message
		waitFor(t, 30*time.Second, "the message to end", func() bool {
			m, _ = st.Message(ctx, id)
			return m.Status == store.MsgFailed
		})
		if !strings.HasPrefix(m.LastError, "expired: ") || m.Attempts != 0 {
			t.Errorf("message = %+v", m)
		}
	}
	if d.Count() != 0 {
		t.Errorf("driver sent %d expired messages", d.Count())
	}
}

func TestTransientFailureGivesUpAfterMaxAttempts(t *testing.T) {
	ctx := context.Background()
	cc := fakeChannel()
	cc.MaxAttempts = 4
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	_, ids, err := st.CreateJob(ctx, store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{{Channel: "sms", Recipient: "+1", Body: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, cfg, st)
	useDriver(s, "sms", &fakeDriver{fail: func(*store.Message) error { return errors.New("connection reset") }})
	start(t, s)
	var m store.Message
	waitFor(t, 30*time.Second, "the message to fail", func() bool {
		m, _ = st.Message(ctx, ids[0])
		return m.Status == store.MsgFailed
	})
	atts, _ := st.MessageAttempts(ctx, ids[0])
	if m.Attempts != 4 || len(atts) != 4 || m.LastError != "gave up after 4 attempts: connection reset" {
		t.Errorf("message = %+v, attempts %+v", m, atts)
	}
	for i := 1; i < len(atts); i++ {
		if atts[i].At.Before(atts[i-1].At) {
			t.Errorf("attempts out of order: %+v", atts)
		}
	}
}
