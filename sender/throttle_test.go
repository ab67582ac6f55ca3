package sender

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dropgate/dropgate/store"
)

// Greylisting answers 451 to a new recipient's first try. That is about
// the message: it is retried alone, and the channel goes on at its rate.
// (Each 451 used to pause the whole channel for 5 s: 300 messages with a
// ninth greylisted took over two minutes.)
func TestGreylistedMessagesRetryAloneWhileTheChannelKeepsItsRate(t *testing.T) {
	k := newSMTPSink(t)
	grey := map[string]bool{}
	msgs := make([]store.Message, 300)
	for i := range msgs {
		rcpt := fmt.Sprintf("r%03d@example.com", i)
		msgs[i] = store.Message{Channel: "email", Recipient: rcpt, Subject: "s", Body: "b"}
		grey[rcpt] = i%9 == 4 // 33 of them
	}
	k.setReply(func(rcpt string, n int) error {
		if grey[rcpt] && n == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again"}
		}
		return nil
	})
	cc := smtpChannel(k)
	cc.Rate, cc.Burst, cc.Concurrency = 1000, 100, 4
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	j := queueMessages(t, st, "acme", store.SourceFile, store.PriorityBulk, msgs)
	var logs syncBuffer
	s := newSender(t, cfg, st, withTLS(k), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	start(t, s)
	done := waitJob(t, st, j.ID, store.JobDone, 60*time.Second)

	if done.Counts[store.MsgSent] != 300 || len(k.Mails()) != 300 {
		t.Fatalf("job = %+v, sink got %d mails; want all 300 delivered", done, len(k.Mails()))
	}
	greylisted := 0
	err := st.JobMessages(context.Background(), j.ID, "", 0, 0, func(m store.Message) error {
		want := 1
		if grey[m.Recipient] {
			want = 2
			greylisted++
		}
		if m.Attempts != want {
			t.Errorf("%s: sent after %d attempts, want %d", m.Recipient, m.Attempts, want)
		}
		return nil
	})
	if err != nil || greylisted != 33 {
		t.Fatalf("JobMessages: %v; %d greylisted", err, greylisted)
	}
	if r := s.Rates()[0]; r.Slowdowns != 0 || r.Throttled || r.Effective != 1000 {
		t.Errorf("rate = %+v; greylisting must leave the channel at its configured 1000/s", r)
	}
	if strings.Contains(logs.String(), "throttles") || strings.Contains(logs.String(), "paused") {
		t.Errorf("the channel was slowed down or paused:\n%s", logs.String())
	}
}

// A provider's throttle signal halves the channel's rate once, the
// message it refused comes back after its backoff (and not before the
// provider's Retry-After), and the rate climbs back to the configured one.
// Everything is timed by the sender's fake clock: no wall-clock gap is
// measured.
func TestThrottleSignalsCutTheChannelsRateUntilItRecovers(t *testing.T) {
	for _, c := range []struct {
		name       string
		smtpErr    *smtp.SMTPError // smtp channel, refused at RCPT
		status     int             // http channel
		retryAfter time.Duration
	}{
		{name: "smtp421", smtpErr: &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many connections, slow down"}},
		{name: "smtp454", smtpErr: &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary service failure"}},
		{name: "smtp451rate", smtpErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Rate limit exceeded, try again later"}},
		{name: "smtp450toomany", smtpErr: &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many messages from your account"}},
		{name: "http429", status: http.StatusTooManyRequests, retryAfter: 30 * time.Second},
		{name: "http503", status: http.StatusServiceUnavailable, retryAfter: 20 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				refused = map[string]bool{}
			)
			// refuse answers the first try of the first recipient.
			refuse := func(rcpt string) bool {
				mu.Lock()
				defer mu.Unlock()
				if rcpt == "" || refused[rcpt] {
					return false
				}
				refused[rcpt] = true
				return true
			}
			var s *Sender
			var st *store.Store
			var msgs []store.Message
			fc := newFakeClock()
			t0 := fc.Now()
			var logs syncBuffer
			opts := []func(*Options){withClock(fc), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }}
			const slow = "slow"
			if c.smtpErr != nil {
				k := newSMTPSink(t)
				k.setReply(func(rcpt string, n int) error {
					if strings.HasPrefix(rcpt, slow) && refuse(rcpt) {
						return c.smtpErr
					}
					return nil
				})
				cc := smtpChannel(k)
				cc.Rate, cc.Burst = 10, 10
				cfg := testConfig(t, cc)
				st = openStore(t, cfg)
				for _, r := range []string{slow, "a", "b", "c"} {
					msgs = append(msgs, store.Message{Channel: "email", Recipient: r + "@example.com", Subject: "s", Body: "b"})
				}
				s = newSender(t, cfg, st, append(opts, withTLS(k))...)
			} else {
				p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
					if strings.Contains(r.Body, slow) && refuse(slow) {
						w.Header().Set("Retry-After", fmt.Sprint(int(c.retryAfter.Seconds())))
						w.WriteHeader(c.status)
						return
					}
					io.WriteString(w, `{"id": "x"}`)
				})
				cc := httpChannel(p.URL)
				cc.Rate, cc.Burst = 10, 10
				cfg := testConfig(t, cc)
				st = openStore(t, cfg)
				for _, r := range []string{slow, "a", "b", "c"} {
					msgs = append(msgs, store.Message{Channel: "sms", Recipient: r, Body: "b"})
				}
				s = newSender(t, cfg, st, opts...)
			}
			ctx := context.Background()
			j, ids, err := st.CreateJob(ctx, store.Job{Partner: "acme", Source: store.SourceAPI}, msgs)
			if err != nil {
				t.Fatal(err)
			}
			start(t, s)
			// The clock stands still: the bucket's burst of 10 lets all four go.
			var m store.Message
			waitFor(t, 30*time.Second, "three sent and the refused one queued for a retry", func() bool {
				got, _ := st.Job(ctx, j.ID)
				m, _ = st.Message(ctx, ids[0])
				return got.Counts[store.MsgSent] == 3 && m.Status == store.MsgQueued && m.Attempts == 1
			})
			if r := s.Rates()[0]; r.Slowdowns != 1 || !r.Throttled || r.Effective != 5 {
				t.Fatalf("after the signal: rate = %+v; want the configured 10/s halved once", r)
			}
			if c.retryAfter > 0 && m.NextAttemptAt.Before(t0.Add(c.retryAfter)) {
				t.Errorf("next attempt at start+%v, before the provider's Retry-After of %v", m.NextAttemptAt.Sub(t0), c.retryAfter)
			}
			// Half way up: 5/s plus 10/s per minute for 15 s.
			fc.Advance(15 * time.Second)
			if r := s.Rates()[0]; !r.Throttled || math.Abs(r.Effective-7.5) > 0.01 {
				t.Errorf("15 s after the signal: rate = %+v, want 7.5/s and climbing", r)
			}
			// Then time runs (a single jump could fall between the
			// dispatcher's look at the clock and its next timer).
			runClock(t, fc, 100*time.Millisecond)
			waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
			if m, _ := st.Message(ctx, ids[0]); m.Status != store.MsgSent || m.Attempts != 2 {
				t.Errorf("refused message = %+v, want sent on its second attempt", m)
			}
			waitFor(t, 30*time.Second, "the rate to recover", func() bool { return !s.Rates()[0].Throttled })
			if r := s.Rates()[0]; r.Effective != 10 || r.Slowdowns != 1 {
				t.Errorf("after recovery: rate = %+v; want back at 10/s after one cut", r)
			}
			log := logs.String()
			if n := strings.Count(log, "throttles this channel"); n != 1 {
				t.Errorf("%d slow-down lines in the log, want 1:\n%s", n, log)
			}
			if n := strings.Count(log, "back to its configured rate"); n != 1 {
				t.Errorf("%d recovery lines in the log, want 1:\n%s", n, log)
			}
		})
	}
}

func TestThrottleHalvesOncePerEpisodeKeepsAFloorAndClimbsBack(t *testing.T) {
	var logs syncBuffer
	th := newThrottle(slog.New(slog.NewTextHandler(&logs, nil)), 64, 64)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rateAt := func(at time.Duration) float64 {
		r, _, _ := th.state(t0.Add(at))
		return r
	}
	th.signal(t0, "421 slow down")
	th.signal(t0.Add(500*time.Millisecond), "421 slow down") // same episode
	if r := rateAt(500 * time.Millisecond); math.Abs(r-(32+64*0.5/60)) > 1e-9 {
		t.Fatalf("rate = %v after one episode, want 32/s climbing", r)
	}
	// The bucket gives tokens at the effective rate, with a burst scaled
	// alike (32 of 64): the 33rd token waits.
	now := t0.Add(500 * time.Millisecond)
	for i := range 40 {
		d := th.reserve(now).DelayFrom(now)
		if i < 32 && d != 0 || i >= 33 && d <= 0 {
			t.Fatalf("token %d waits %v", i+1, d)
		}
	}
	// Signals more than a second apart, while the provider still
	// throttles, halve it again each time (what it regained in between
	// included), never below 1/64 of the configured rate.
	at := t0
	for range 12 {
		at = at.Add(1100 * time.Millisecond)
		th.signal(at, "421 slow down")
		if r, _, _ := th.state(at); r < 1 {
			t.Fatalf("rate %v/s below the floor of 1/s", r)
		}
	}
	low, throttled, cuts := th.state(at)
	if low > 1.2 || !throttled || cuts != 13 {
		t.Fatalf("after 13 signals: rate %v, throttled %v, cuts %d; want near the floor of 1/s", low, throttled, cuts)
	}
	// Then it climbs by 64/s a minute, back to the configured rate.
	if r := rateAt(at.Sub(t0) + 30*time.Second); math.Abs(r-(low+32)) > 1e-9 {
		t.Errorf("30 s after the last signal: %v/s, want %v", r, low+32)
	}
	th.reserve(at.Add(time.Minute))
	if r, throttled, _ := th.state(at.Add(time.Minute)); r != 64 || throttled {
		t.Errorf("a minute after the last signal: %v/s, throttled %v; want 64, not throttled", r, throttled)
	}
	log := logs.String()
	// One line per cut (the signal within the episode cut nothing), one
	// for the return; none for the steps of the climb.
	if n := strings.Count(log, "throttles this channel"); n != 13 {
		t.Errorf("%d slow-down lines, want 13:\n%s", n, log)
	}
	if n := strings.Count(log, "back to its configured rate"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, log)
	}
}

// An unlimited channel has no rate to halve: it halves the pace it had.
func TestThrottleOfAnUnlimitedChannelHalvesItsPace(t *testing.T) {
	th := newThrottle(slog.New(slog.DiscardHandler), 0, 0)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := range 40 {
		now := t0.Add(time.Duration(i) * 25 * time.Millisecond) // 40 a second
		if d := th.reserve(now).DelayFrom(now); d != 0 {
			t.Fatalf("an unlimited channel made token %d wait %v", i+1, d)
		}
	}
	at := t0.Add(time.Second)
	th.signal(at, "HTTP 429")
	if r, throttled, _ := th.state(at); r != 20 || !throttled {
		t.Fatalf("rate = %v, throttled %v; want 20/s (half the pace of 40/s)", r, throttled)
	}
	later := at.Add(time.Minute)
	th.reserve(later)
	if r, throttled, _ := th.state(later); r != 0 || throttled {
		t.Errorf("after recovery: rate %v, throttled %v; want unlimited again", r, throttled)
	}
	if d := th.reserve(later).DelayFrom(later); d != 0 {
		t.Errorf("a recovered unlimited channel made a token wait %v", d)
	}
}

func TestSMTPThrottleSignalsAreToldFromOneMessagesFailures(t *testing.T) {
	for _, c := range []struct {
		code     int
		msg      string
		throttle bool
	}{
		{421, "4.7.0 Too many connections from your IP", true},
		{421, "Service not available, closing transmission channel", true},
		{454, "4.7.0 Temporary authentication failure", true},
		{451, "4.7.1 Rate limit exceeded, try again in 60 seconds", true},
		{452, "4.7.0 Too many messages sent this hour", true},
		{450, "4.7.0 Throttled", true},
		{451, "4.3.0 try again", false},
		{451, "4.7.1 Greylisted, see https://example.com/greylisting", false},
		{451, "4.7.1 Service unavailable - try again later", false},
		{450, "4.2.1 Mailbox busy", false},
		{452, "4.5.3 Too many recipients", false},
		{452, "4.3.1 Insufficient system storage", false},
		{451, "Requested action aborted: local error in processing", false},
	} {
		err := classifySMTP(fmt.Errorf("sending SMTP RCPT TO command: %w", &textproto.Error{Code: c.code, Msg: c.msg}))
		de := classify(err)
		if de.Permanent || de.Throttle != c.throttle {
			t.Errorf("%d %s: permanent %v, throttle %v; want transient, throttle %v", c.code, c.msg, de.Permanent, de.Throttle, c.throttle)
		}
	}
	if de := classify(classifySMTP(&textproto.Error{Code: 550, Msg: "5.7.1 Rate limit: you are blocked"})); !de.Permanent || de.Throttle {
		t.Errorf("550: %+v, want permanent", de)
	}
}

func TestHTTPThrottleSignalsAreToldFromOneRequestsFailures(t *testing.T) {
	d := &httpDriver{}
	for _, c := range []struct {
		status     int
		retryAfter string
		throttle   bool
		after      time.Duration
		permanent  bool
	}{
		{status: 429, throttle: true},
		{status: 429, retryAfter: "7", throttle: true, after: 7 * time.Second},
		{status: 503, retryAfter: "2", throttle: true, after: 2 * time.Second},
		{status: 503},
		{status: 500},
		{status: 502, retryAfter: "3", after: 3 * time.Second},
		{status: 408},
		{status: 400, permanent: true},
	} {
		resp := &http.Response{StatusCode: c.status, Status: http.StatusText(c.status), Header: http.Header{}}
		if c.retryAfter != "" {
			resp.Header.Set("Retry-After", c.retryAfter)
		}
		de := classify(d.statusError(resp, nil))
		if de.Throttle != c.throttle || de.RetryAfter != c.after || de.Permanent != c.permanent {
			t.Errorf("HTTP %d (Retry-After %q): %+v; want throttle %v, retry after %v, permanent %v",
				c.status, c.retryAfter, de, c.throttle, c.after, c.permanent)
		}
	}
}
