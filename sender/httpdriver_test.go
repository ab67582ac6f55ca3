package sender

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

func httpChannel(url string) config.Channel {
	return config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: url + "/v1/messages", IDPath: "/id", Concurrency: 2}
}

func TestHTTPSendsTheRenderedRequestWithTheIdempotencyKey(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"data": {"messages": [{"id": 4242, "status": "accepted"}]}}`)
	})
	cc := httpChannel(p.URL)
	cc.Method = "PUT"
	cc.IDPath = "/data/messages/0/id"
	cc.Headers = map[string]string{"Authorization": "Bearer t0ken", "X-Partner": "{{.Partner}}/{{.Channel}}"}
	cc.Body = `{"to":{{json .To}},"text":{{json .Body}},"ref":{{json .Ref}},"id":{{json .ID}},"name":{{json .Vars.name}}}`
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	j, ids, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{
		{Channel: "sms", Recipient: "+351912345678", Body: "Olá \"Zé\"\n", Ref: "r-1", Vars: map[string]string{"name": "Zé"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, cfg, st)
	start(t, s)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)

	reqs := p.Requests()
	if len(reqs) != 1 {
		t.Fatalf("provider got %d requests", len(reqs))
	}
	r, key := reqs[0], st.MessageKey(ids[0])
	want := `{"to":"+351912345678","text":"Olá \"Zé\"\n","ref":"r-1","id":"` + key + `","name":"Zé"}`
	if r.Body != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
	if r.Method != "PUT" || r.Path != "/v1/messages" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}
	for h, v := range map[string]string{"Idempotency-Key": key, "Content-Type": "application/json",
		"Authorization": "Bearer t0ken", "X-Partner": "acme/sms"} {
		if got := r.Header.Get(h); got != v {
			t.Errorf("%s = %q, want %q", h, got, v)
		}
	}
	m, _ := st.Message(context.Background(), ids[0])
	if m.Status != store.MsgSent || m.ProviderID != "4242" {
		t.Errorf("message = %+v, want sent with provider id 4242", m)
	}
}

func TestHTTPServerErrorsRetryWithTheSameKeyUntilAccepted(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		if n <= 2 {
			http.Error(w, "upstream unavailable", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"id": "ok-3"}`)
	})
	st, _, id := sendOneAPIMessage(t, httpChannel(p.URL))
	var m store.Message
	waitFor(t, 30*time.Second, "the message to be sent", func() bool {
		m, _ = st.Message(context.Background(), id)
		return m.Status == store.MsgSent
	})
	if m.Attempts != 3 || m.ProviderID != "ok-3" {
		t.Errorf("message = %+v, want sent on attempt 3", m)
	}
	reqs := p.Requests()
	if len(reqs) != 3 {
		t.Fatalf("provider got %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("Idempotency-Key") != st.MessageKey(id) {
			t.Errorf("Idempotency-Key changed across retries: %q", r.Header.Get("Idempotency-Key"))
		}
	}
	atts, _ := st.MessageAttempts(context.Background(), id)
	if len(atts) != 3 || atts[0].Outcome != store.OutcomeRetry || !strings.Contains(atts[0].Error, "HTTP 500: upstream unavailable") ||
		atts[2].Outcome != store.OutcomeSent {
		t.Errorf("attempts = %+v", atts)
	}
}

func TestHTTPClientErrorFailsAtOnceWithTheProvidersText(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "  {\"error\": \"invalid phone number\"}\n\n")
	})
	st, j, id := sendOneAPIMessage(t, httpChannel(p.URL))
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	m, _ := st.Message(context.Background(), id)
	if m.Status != store.MsgFailed || m.Attempts != 1 || m.LastError != `HTTP 400: {"error": "invalid phone number"}` {
		t.Errorf("message = %+v", m)
	}
	if n := len(p.Requests()); n != 1 {
		t.Errorf("provider got %d requests, want 1", n)
	}
}

func TestRetryAfterReadsSecondsAndDates(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"1": time.Second, "120": 2 * time.Minute, "": 0, "soon": 0, "-3": 0,
		"Thu, 26 Nov 2026 12:00:30 GMT": 30 * time.Second, "Thu, 26 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

func TestNewNamesTheBadChannelField(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	st := openStore(t, cfg)
	for _, c := range []struct {
		ch   config.Channel
		want string
	}{
		{config.Channel{Name: "sms", Type: "http", URL: "http://x/", Body: "{{.To"}, "channel[1].body: "},
		{config.Channel{Name: "sms", Type: "http", URL: "ftp://x/"}, "channel[1].url: "},
		{config.Channel{Name: "sms", Type: "http", URL: "http://x/", Headers: map[string]string{"X-A": "{{"}}, "channel[1].headers.X-A: "},
		{config.Channel{Name: "mail", Type: "smtp", Host: "h", From: "a@b.example", TLS: "ssl3"}, "channel[1].tls: "},
		{config.Channel{Name: "mail", Type: "smtp", Host: "h", From: "not an address"}, "channel[1].from: "},
		{config.Channel{Name: "x", Type: "pigeon"}, "channel[1].type: "},
	} {
		cfg.Channels = []config.Channel{{Name: "email", Type: "outbox"}, c.ch}
		_, err := New(Options{Config: cfg, Store: st})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("New with %+v: %v, want an error starting %q", c.ch, err, c.want)
		}
	}
}

func TestHTTPTimeoutIsRetried(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		if n == 1 {
			<-r.Context.Done() // answers only once the sender gave up waiting
			return
		}
		io.WriteString(w, `{"id": "late"}`)
	})
	cc := httpChannel(p.URL)
	cc.Timeout = config.Duration(500 * time.Millisecond)
	st, _, id := sendOneAPIMessage(t, cc)
	var m store.Message
	waitFor(t, 30*time.Second, "the message to be sent", func() bool {
		m, _ = st.Message(context.Background(), id)
		return m.Status == store.MsgSent
	})
	// The first attempt timed out; on a loaded machine a later one may too
	// (the timeout is real time), so their number is not fixed.
	atts, _ := st.MessageAttempts(context.Background(), id)
	if m.Attempts < 2 || len(atts) != m.Attempts || atts[0].Outcome != store.OutcomeRetry || !strings.Contains(atts[0].Error, "deadline exceeded") ||
		atts[len(atts)-1].Outcome != store.OutcomeSent {
		t.Errorf("message = %+v, attempts %+v", m, atts)
	}
}

// The driver reuses what it can between requests (fixed header values, the
// answer buffer, the body's starting size): each request must still carry
// its own body, headers and id, whatever the sizes before it.
func TestHTTPRequestsKeepTheirOwnBodiesHeadersAndAnswers(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		// Answers larger than the pooled buffer's first size, the id last.
		io.WriteString(w, `{"pad": "`+strings.Repeat("x", 10_000*(len(r.Body)%3))+`", "id": "id-`+r.Header.Get("Idempotency-Key")+`"}`)
	})
	cc := httpChannel(p.URL)
	cc.Concurrency = 1 // one after another, so each follows the one before
	cc.Headers = map[string]string{"User-Agent": "acme-gw/{{.Ref}}"}
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	bodies := []string{strings.Repeat("long ", 400), "short", strings.Repeat("mid ", 50), "", "s"}
	msgs := make([]store.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = store.Message{Channel: "sms", Recipient: fmt.Sprintf("+1555000%04d", i), Body: b, Ref: fmt.Sprint("r", i)}
	}
	j, ids, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI}, msgs)
	if err != nil {
		t.Fatal(err)
	}
	start(t, newSender(t, cfg, st))
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)

	byKey := map[string]sinkRequest{}
	for _, r := range p.Requests() {
		byKey[r.Header.Get("Idempotency-Key")] = r
	}
	for i, id := range ids {
		key := st.MessageKey(id)
		r, ok := byKey[key]
		if !ok {
			t.Fatalf("no request for message %d", i)
		}
		want := `{"to": "` + msgs[i].Recipient + `", "body": "` + bodies[i] + `", "subject": "", "id": "` + key + `", "ref": "` + msgs[i].Ref + `"}`
		if r.Body != want {
			t.Errorf("message %d: body = %.80s…, want %.80s…", i, r.Body, want)
		}
		if ua, ct := r.Header.Get("User-Agent"), r.Header.Get("Content-Type"); ua != "acme-gw/"+msgs[i].Ref || ct != "application/json" {
			t.Errorf("message %d: User-Agent %q, Content-Type %q", i, ua, ct)
		}
		if m, _ := st.Message(context.Background(), id); m.Status != store.MsgSent || m.ProviderID != "id-"+key {
			t.Errorf("message %d = %s with provider id %q, want sent with id-%s", i, m.Status, m.ProviderID, key)
		}
	}
}

// sendOneAPIMessage queues one API message ("x" to +1) on the channel cc
// (named sms), starts a sender on it, and returns the store, the job and
// the message's id.
func sendOneAPIMessage(t *testing.T, cc config.Channel) (*store.Store, store.Job, int64) {
	t.Helper()
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	j, ids, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI},
		[]store.Message{{Channel: "sms", Recipient: "+1", Body: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, newSender(t, cfg, st))
	return st, j, ids[0]
}
