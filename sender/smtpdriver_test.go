package sender

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

func smtpChannel(k *smtpSink) config.Channel {
	return config.Channel{Name: "email", Type: config.ChannelSMTP, Host: "127.0.0.1", Port: k.port, TLS: "starttls",
		Username: "apikey", Password: "s3cret", From: "Acme <no-reply@acme.example>",
		ListUnsubscribe: "<mailto:unsubscribe@acme.example>", Concurrency: 2}
}

func withTLS(k *smtpSink) func(*Options) {
	return func(o *Options) { o.SMTPTLSConfig = k.client }
}

func TestSMTPSendsOverSTARTTLSWithAuthAndStableMessageID(t *testing.T) {
	k := newSMTPSink(t)
	cfg := testConfig(t, smtpChannel(k))
	st := openStore(t, cfg)
	j := queueMessages(t, st, "acme", store.SourceFile, store.PriorityBulk, []store.Message{
		{Channel: "email", Recipient: "ana@example.com", Subject: "Your order", Format: "html", Sender: "Orders <orders@acme.example>",
			Body: "<html><head><style>p{}</style></head><body><h1>Hi Ana</h1><p>Your order <b>A-1</b> &amp; more.</p></body></html>"},
		{Channel: "email", Recipient: "rui@example.com", Subject: "Plain", Body: "Hello Rui\n", Sender: "Evil <x@evil.example>"},
	})
	s := newSender(t, cfg, st, withTLS(k))
	start(t, s)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)

	mails := k.Mails()
	if len(mails) != 2 {
		t.Fatalf("sink got %d mails", len(mails))
	}
	byTo := map[string]sinkMail{}
	for _, m := range mails {
		if !m.TLS || m.User != "apikey" {
			t.Errorf("mail to %v: TLS %v, user %q; want STARTTLS and AUTH as apikey", m.To, m.TLS, m.User)
		}
		byTo[m.To[0]] = m
	}
	ana, rui := byTo["ana@example.com"], byTo["rui@example.com"]
	var anaMsg store.Message
	st.JobMessages(context.Background(), j.ID, "", 0, 0, func(m store.Message) error {
		if m.Recipient == "ana@example.com" {
			anaMsg = m
		}
		return nil
	})
	wantID := "<" + st.MessageKey(anaMsg.ID) + "@acme.example>"
	if got := header(ana.Data, "Message-ID"); got != wantID {
		t.Errorf("Message-ID = %q, want %q", got, wantID)
	}
	if anaMsg.ProviderID != wantID {
		t.Errorf("provider id = %q, want the Message-ID %q", anaMsg.ProviderID, wantID)
	}
	if ana.From != "orders@acme.example" || !strings.Contains(header(ana.Data, "From"), "orders@acme.example") {
		t.Errorf("template from in the channel's domain not used: envelope %q, header %q", ana.From, header(ana.Data, "From"))
	}
	if rui.From != "no-reply@acme.example" || !strings.Contains(header(rui.Data, "From"), "no-reply@acme.example") {
		t.Errorf("template from outside the channel's domain was used: envelope %q, header %q", rui.From, header(rui.Data, "From"))
	}
	if got := header(ana.Data, "List-Unsubscribe"); got != "<mailto:unsubscribe@acme.example>" {
		t.Errorf("List-Unsubscribe = %q", got)
	}
	if got := header(ana.Data, "Subject"); got != "Your order" {
		t.Errorf("Subject = %q", got)
	}
	if ct := header(ana.Data, "Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("html mail Content-Type = %q, want multipart/alternative", ct)
	}
	for _, want := range []string{"Content-Type: text/plain", "Hi Ana\r\nYour order A-1 & more.", "Content-Type: text/html", "<h1>Hi Ana</h1>"} {
		if !strings.Contains(ana.Data, want) {
			t.Errorf("html mail lacks %q:\n%s", want, ana.Data)
		}
	}
	if text, _, _ := strings.Cut(ana.Data, "Content-Type: text/html"); strings.Contains(text, "p{}") {
		t.Errorf("text alternative kept the style sheet:\n%s", ana.Data)
	}
	if ct := header(rui.Data, "Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(rui.Data, "Hello Rui") {
		t.Errorf("text mail: Content-Type %q, data:\n%s", ct, rui.Data)
	}
}

func TestSMTPReusesConnectionsUpToConcurrency(t *testing.T) {
	k := newSMTPSink(t)
	cfg := testConfig(t, smtpChannel(k))
	st := openStore(t, cfg)
	msgs := make([]store.Message, 30)
	for i := range msgs {
		msgs[i] = store.Message{Channel: "email", Recipient: "r@example.com", Subject: "s", Body: "b"}
	}
	j := queueMessages(t, st, "acme", store.SourceAPI, store.PriorityTransactional, msgs)
	s := newSender(t, cfg, st, withTLS(k))
	start(t, s)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	if n := len(k.Mails()); n != 30 {
		t.Fatalf("sink got %d mails, want 30", n)
	}
	// The start-up probe's connection is pooled and reused too.
	if n := k.Conns(); n > 2 {
		t.Errorf("%d SMTP connections for 30 mails with concurrency 2; connections are not reused", n)
	}
}

func TestSMTPRejectionFailsAtOnceAndBusyReplyRetries(t *testing.T) {
	k := newSMTPSink(t)
	k.setReply(func(rcpt string, n int) error {
		switch {
		case strings.HasPrefix(rcpt, "bad@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
		case strings.HasPrefix(rcpt, "busy@") && n == 1:
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Try again later"}
		}
		return nil
	})
	cfg := testConfig(t, smtpChannel(k))
	st := openStore(t, cfg)
	j, ids, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{
		{Channel: "email", Recipient: "bad@example.com", Subject: "s", Body: "b"},
		{Channel: "email", Recipient: "busy@example.com", Subject: "s", Body: "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, cfg, st, withTLS(k))
	start(t, s)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	if r := s.Rates()[0]; r.Slowdowns != 0 || r.Throttled {
		t.Errorf("rate = %+v; a 550 and a greylisting 451 are about one message and must not slow the channel", r)
	}

	bad, _ := st.Message(context.Background(), ids[0])
	if bad.Status != store.MsgFailed || bad.Attempts != 1 || !strings.Contains(bad.LastError, "No such user here") {
		t.Errorf("550 recipient = %+v, want failed after 1 attempt with the server's words", bad)
	}
	busy, _ := st.Message(context.Background(), ids[1])
	if busy.Status != store.MsgSent || busy.Attempts != 2 {
		t.Errorf("451 recipient = %+v, want sent on the second attempt", busy)
	}
	if atts, _ := st.MessageAttempts(context.Background(), ids[1]); len(atts) != 2 || !strings.Contains(atts[0].Error, "Try again later") {
		t.Errorf("attempts = %+v", atts)
	}
}

func TestUnreachableSMTPServerWarnsAtStartAndRetries(t *testing.T) {
	cc := config.Channel{Name: "email", Type: config.ChannelSMTP, Host: "127.0.0.1", Port: closedPort(t), TLS: "none",
		From: "a@acme.example", MaxAttempts: 3}
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	_, ids, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI},
		[]store.Message{{Channel: "email", Recipient: "r@example.com", Body: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	// Each failed connection slows the channel down (the server, not the
	// message, is the problem): its own clock lets the test through the
	// slow-down without waiting for it.
	fc := newFakeClock()
	s := newSender(t, cfg, st, withClock(fc), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	start(t, s)
	runClock(t, fc, 100*time.Millisecond)
	var m store.Message
	waitFor(t, 30*time.Second, "the message to fail after its attempts", func() bool {
		m, _ = st.Message(context.Background(), ids[0])
		return m.Status == store.MsgFailed
	})
	if m.Attempts != 3 || !strings.Contains(m.LastError, "gave up after 3 attempts") {
		t.Errorf("message = %+v", m)
	}
	if !strings.Contains(logs.String(), "channel does not answer at start") {
		t.Errorf("no start-up warning in the log:\n%s", logs.String())
	}
	if r := s.Rates()[0]; r.Slowdowns == 0 {
		t.Errorf("rate = %+v; failed connections did not slow the channel down", r)
	}
}

func TestHTMLToTextKeepsLinesAndDropsMarkup(t *testing.T) {
	got := htmlToText("<html><head><title>T</title></head><body>\n<h1>Hello</h1>\n<p>a <i>b</i>\nc</p><ul><li>one</li><li>two</li></ul>x&lt;y<br>z<!-- hidden --></body></html>")
	want := "Hello\na b c\n- one\n- two\nx<y\nz\n"
	if got != want {
		t.Errorf("htmlToText = %q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
