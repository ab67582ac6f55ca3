package sender

import (
	"context"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

func TestOutboxDeliversEveryMessageOnceAndFinishesTheJob(t *testing.T) {
	cfg := testConfig(t)
	st := openStore(t, cfg)
	j := queueMessages(t, st, "acme", store.SourceFile, store.PriorityBulk, []store.Message{
		{Channel: "email", Recipient: "ana@example.com", Subject: "Hi", Body: "Hello Ana", Ref: "r1", Format: "html", Line: 2},
		{Channel: "sms", Recipient: "+351912345678", Body: "Olá", Ref: "r2", Line: 3},
	})
	s := newSender(t, cfg, st)
	start(t, s)

	done := waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	if done.Counts[store.MsgSent] != 2 || done.StartedAt.IsZero() || done.FinishedAt.IsZero() {
		t.Fatalf("job = %+v", done)
	}
	emails := outboxLines(t, cfg, "email")
	if len(emails) != 1 {
		t.Fatalf("email outbox = %+v", emails)
	}
	e := emails[0]
	if e.To != "ana@example.com" || e.Subject != "Hi" || e.Body != "Hello Ana" || e.Ref != "r1" || e.Format != "html" ||
		e.Partner != "acme" || e.Channel != "email" || e.JobID != j.ID || e.Key != st.MessageKey(e.ID) {
		t.Errorf("email line = %+v", e)
	}
	if sms := outboxLines(t, cfg, "sms"); len(sms) != 1 || sms[0].To != "+351912345678" || sms[0].Body != "Olá" {
		t.Errorf("sms outbox = %+v", sms)
	}
	m, err := st.Message(context.Background(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != store.MsgSent || m.ProviderID == "" || m.SentAt.IsZero() || m.Attempts != 1 {
		t.Errorf("message = %+v", m)
	}
	atts, err := st.MessageAttempts(context.Background(), e.ID)
	if err != nil || len(atts) != 1 || atts[0].Outcome != store.OutcomeSent {
		t.Errorf("attempts = %+v, %v", atts, err)
	}
}

func TestNudgeWakesAnIdleSender(t *testing.T) {
	cfg := testConfig(t, config.Channel{Name: "sms", Type: config.ChannelOutbox})
	cfg.Sender.PollInterval = config.Duration(time.Hour)
	st := openStore(t, cfg)
	fc := newFakeClock() // stands still: the dispatcher's poll never fires
	s := newSender(t, cfg, st, withClock(fc))
	start(t, s)
	waitFor(t, 30*time.Second, "the dispatcher to go idle", func() bool { return fc.Sleepers() > 0 })
	j := queueJob(t, st, "acme", store.SourceAPI, store.PriorityTransactional, "sms", 3)
	s.Nudge()
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
}
