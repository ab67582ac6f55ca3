package admin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
	"github.com/dropgate/dropgate/unsubscribe"
)

// optOutFixture is an admin server with unsubscribe links and an http
// channel "sms" whose inbound route opts out of acme.
type optOutFixture struct {
	srv   *httptest.Server
	s     *Server
	st    *store.Store
	links *unsubscribe.Links
}

const inboundSecret = "inbound-secret-0123456789"

func newOptOutFixture(t *testing.T) *optOutFixture {
	t.Helper()
	st := storetest.Open(t)
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	cfg.Channels = append(cfg.Channels, config.Channel{Name: "sms-in", Type: config.ChannelHTTP, URL: "http://127.0.0.1:1/", Recipient: "phone",
		Inbound: &config.Inbound{Secret: inboundSecret, FromPath: "/From", TextPath: "/Body", Partner: "acme"}})
	cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Channels: []string{"email", "sms-in"}}, {Name: "beta", Region: "PT", Channels: []string{"sms-in"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	links, err := unsubscribe.New([]byte("0123456789abcdef0123456789abcdef"), "https://mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	// The suppression check of ingest, as the daemon wires it.
	check := func(partner string, entries []ingest.SuppressEntry) ([]store.Suppression, []ingest.Problem, error) {
		var out []store.Suppression
		for _, e := range entries {
			if !strings.HasPrefix(e.Phone, "+") {
				return nil, []ingest.Problem{{Field: "phone", Message: "not a number"}}, nil
			}
			out = append(out, store.Suppression{Partner: partner, Recipient: strings.ReplaceAll(e.Phone, " ", "")})
		}
		return out, nil, nil
	}
	s, err := New(Options{Config: cfg, Store: st, Unsubscribe: links, CheckSuppressions: check})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &optOutFixture{srv: ts, s: s, st: st, links: links}
}

func (f *optOutFixture) post(t *testing.T, path, contentType, body string, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *optOutFixture) suppressed(t *testing.T, partner, recipient string) bool {
	t.Helper()
	ok, err := f.st.IsSuppressed(context.Background(), partner, "email", recipient)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A body past 4 KiB, a token of a partner no longer configured, and the
// rate limit each refuse an unsubscribe without changing anything.
func TestUnsubscribeRouteIsBounded(t *testing.T) {
	f := newOptOutFixture(t)
	form := "application/x-www-form-urlencoded"
	path := "/u/" + f.links.Token("acme", "ana@example.com")
	if code, _ := f.post(t, path, form, strings.Repeat("x", maxUnsubscribeBody+1), ""); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
	if code, _ := f.post(t, "/u/"+f.links.Token("gone", "ana@example.com"), form, "List-Unsubscribe=One-Click", ""); code != http.StatusNotFound {
		t.Fatalf("unknown partner: %d", code)
	}
	if f.suppressed(t, "acme", "ana@example.com") || f.suppressed(t, "gone", "ana@example.com") {
		t.Fatal("a refused request suppressed")
	}
	f.s.unsubLimit = rate.NewLimiter(0, 1) // one, then none
	if code, body := f.post(t, path, form, "List-Unsubscribe=One-Click", ""); code != http.StatusOK || !f.suppressed(t, "acme", "ana@example.com") {
		t.Fatalf("first POST: %d %s", code, body)
	}
	other := "/u/" + f.links.Token("acme", "bob@example.com")
	if code, _ := f.post(t, other, form, "List-Unsubscribe=One-Click", ""); code != http.StatusTooManyRequests || f.suppressed(t, "acme", "bob@example.com") {
		t.Fatalf("past the limit: %d", code)
	}
}

// A provider that posts a form (Twilio) is read by field name; the
// channel's partner is opted out, the other partner is not.
func TestInboundReadsFormBodies(t *testing.T) {
	f := newOptOutFixture(t)
	code, body := f.post(t, "/api/v1/inbound/sms-in", "application/x-www-form-urlencoded", "From=%2B351912345678&Body=Stop", "Bearer "+inboundSecret)
	if code != http.StatusOK || !strings.Contains(body, `"opt_out": true`) {
		t.Fatalf("form STOP: %d %s", code, body)
	}
	if ok, _ := f.st.IsSuppressed(context.Background(), "acme", "sms-in", "+351912345678"); !ok {
		t.Fatal("acme not suppressed")
	}
	if ok, _ := f.st.IsSuppressed(context.Background(), "beta", "sms-in", "+351912345678"); ok {
		t.Fatal("beta suppressed by acme's channel partner")
	}
	if code, body := f.post(t, "/api/v1/inbound/sms-in", "application/x-www-form-urlencoded", "Body=STOP", "Bearer "+inboundSecret); code != http.StatusUnprocessableEntity {
		t.Fatalf("form without From: %d %s", code, body)
	}
}
