package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// mailSink is an SMTP server on 127.0.0.1 that keeps what it is given
// (no TLS, no AUTH: the channel says tls = "none").
type mailSink struct {
	port  int
	mu    sync.Mutex
	mails []*mail.Message
}

func newMailSink(t *testing.T) *mailSink {
	t.Helper()
	k := &mailSink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSinkSession{k: k}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	k.port = l.Addr().(*net.TCPAddr).Port
	return k
}

// waitMail waits for the n-th mail (1-based) and returns it.
func (k *mailSink) waitMail(t *testing.T, n int) *mail.Message {
	t.Helper()
	var m *mail.Message
	waitFor(t, time.Minute, fmt.Sprintf("mail %d at the SMTP sink", n), func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		if len(k.mails) >= n {
			m = k.mails[n-1]
		}
		return m != nil
	})
	return m
}

type mailSinkSession struct{ k *mailSink }

func (s *mailSinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSinkSession) Reset()                               {}
func (s *mailSinkSession) Logout() error                        { return nil }
func (s *mailSinkSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return err
	}
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		if body, err = io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(body)))); err != nil {
			return err
		}
	}
	m.Body = strings.NewReader(string(body))
	s.k.mu.Lock()
	s.k.mails = append(s.k.mails, m)
	s.k.mu.Unlock()
	return nil
}

const betaAPIKey = "beta-api-key-0123456789abcdef"

// unsubscribeConfig is testConfig with an smtp channel "email" to the
// sink, public_url set, and partners acme and beta with API keys.
func unsubscribeConfig(t *testing.T, k *mailSink) *config.Config {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Admin.PublicURL = "https://mail.acme.test"
	cfg.Channels[0] = config.Channel{Name: "email", Type: config.ChannelSMTP, Host: "127.0.0.1", Port: k.port, TLS: "none",
		From: "Acme <news@acme.example>", Concurrency: 1}
	cfg.Partners[0].APIKey = acmeAPIKey
	beta := cfg.Partners[0]
	beta.Name, beta.APIKey = "beta", betaAPIKey
	cfg.Partners = append(cfg.Partners, beta)
	return cfg
}

// seedContacts puts ana (ana@example.com, +351912345678) on two lists of
// acme and one of beta, before the daemon opens the database.
func seedContacts(t *testing.T, cfg *config.Config) {
	t.Helper()
	ctx := context.Background()
	st, err := storetest.OpenAt(t, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, pl := range [][2]string{{"acme", "news"}, {"acme", "offers"}, {"beta", "news"}} {
		l, err := st.EnsureList(ctx, pl[0], pl[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.PutContact(ctx, l, store.ContactInput{Email: "ana@example.com", Phone: "+351912345678"}); err != nil {
			t.Fatal(err)
		}
	}
}

// memberships reads a recipient's list statuses of a partner once the
// daemon has stopped.
func memberships(t *testing.T, cfg *config.Config, partner, recipient string) map[string]string {
	t.Helper()
	st, err := storetest.OpenAt(t, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := st.Memberships(context.Background(), partner, recipient)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// public calls a public page of the admin server, without a token.
func (d *testDaemon) public(t *testing.T, method, path, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.Addrs.Admin.String()+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// The one-click POST of RFC 8058, through the real admin server, to the
// link of the List-Unsubscribe header an email arrived with: the contact
// leaves every list of the partner, the address is suppressed, and the
// next send to it ends suppressed. A forged or altered link changes
// nothing; the other partner's contact and sends are untouched.
func TestOneClickUnsubscribeThroughAdminServer(t *testing.T) {
	k := newMailSink(t)
	cfg := unsubscribeConfig(t, k)
	seedContacts(t, cfg)
	d := startDaemon(t, cfg)

	if code, out := d.putTemplate(t, "news", "channel: email\nsubject: News\n---\nHello,\nleave: {{unsubscribe_url}}\n"); code != http.StatusCreated {
		t.Fatalf("PUT template: %d %v", code, out)
	}
	send := func(key string) int64 {
		req := `{"template": "news", "to": "ana@example.com"}`
		if key == betaAPIKey { // beta has no template
			req = `{"channel": "email", "subject": "s", "body": "b", "to": "ana@example.com"}`
		}
		r := d.postJSON(t, key, "", "/api/v1/messages", req)
		if r.Status != http.StatusAccepted {
			t.Fatalf("send: %d %s", r.Status, r.raw)
		}
		return r.messageIDs(t)[0]
	}
	if got := d.finalStatus(t, send(acmeAPIKey)); got != "sent" {
		t.Fatalf("first send: %s", got)
	}
	m := k.waitMail(t, 1)
	lu := m.Header.Get("List-Unsubscribe")
	link, ok := strings.CutPrefix(strings.TrimSuffix(lu, ">"), "<")
	if !ok || !strings.HasPrefix(link, "https://mail.acme.test/u/") {
		t.Fatalf("List-Unsubscribe = %q; want <https://mail.acme.test/u/...>", lu)
	}
	if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Fatalf("List-Unsubscribe-Post = %q", got)
	}
	body, _ := io.ReadAll(m.Body)
	if !strings.Contains(string(body), "leave: "+link) {
		t.Fatalf("body %q does not carry the header's link %s", body, link)
	}
	u, _ := url.Parse(link)
	path := u.Path

	// The confirm page changes nothing; an altered or forged token is 404.
	code, page, h := d.public(t, "GET", path, "")
	if code != http.StatusOK || !strings.Contains(page, `<form method="post">`) || !strings.Contains(page, "a***@example.com") ||
		h.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET confirm page: %d %v\n%s", code, h, page)
	}
	tok := strings.TrimPrefix(path, "/u/")
	flip := "A"
	if tok[5] == 'A' {
		flip = "B"
	}
	for _, bad := range []string{tok[:5] + flip + tok[6:], tok[:len(tok)-2], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if code, _, _ := d.public(t, "POST", "/u/"+bad, "List-Unsubscribe=One-Click"); code != http.StatusNotFound {
			t.Errorf("POST a forged token: %d, want 404", code)
		}
	}
	var sups struct{ Suppressions []store.Suppression }
	d.API(t, "GET", "/api/v1/suppressions?partner=acme", &sups)
	if len(sups.Suppressions) != 0 {
		t.Fatalf("suppressed before the POST: %+v", sups.Suppressions)
	}

	// The one-click POST, twice (mail clients retry): the same answer.
	for i := 0; i < 2; i++ {
		code, page, _ = d.public(t, "POST", path, "List-Unsubscribe=One-Click")
		if code != http.StatusOK || !strings.Contains(page, "Unsubscribed") {
			t.Fatalf("one-click POST %d: %d\n%s", i, code, page)
		}
	}
	d.API(t, "GET", "/api/v1/suppressions?partner=acme", &sups)
	if len(sups.Suppressions) != 1 || sups.Suppressions[0].Recipient != "ana@example.com" || sups.Suppressions[0].Channel != "" {
		t.Fatalf("acme suppressions = %+v; want ana on every channel", sups.Suppressions)
	}
	if got := d.finalStatus(t, send(acmeAPIKey)); got != "suppressed" {
		t.Errorf("acme's send after the unsubscribe: %s, want suppressed", got)
	}
	if got := d.finalStatus(t, send(betaAPIKey)); got != "sent" {
		t.Errorf("beta's send to the same address: %s, want sent", got)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := memberships(t, cfg, "acme", "ana@example.com"), map[string]string{"news": "unsubscribed", "offers": "unsubscribed"}; !maps.Equal(got, want) {
		t.Errorf("acme lists = %v, want %v", got, want)
	}
	if got, want := memberships(t, cfg, "beta", "ana@example.com"), map[string]string{"news": "subscribed"}; !maps.Equal(got, want) {
		t.Errorf("beta lists = %v, want %v", got, want)
	}
}

// Without public_url no header is sent, and a template placing the link
// is refused with the reason, at PUT as for a drop.
func TestUnsubscribeLinkNeedsPublicURL(t *testing.T) {
	k := newMailSink(t)
	cfg := unsubscribeConfig(t, k)
	cfg.Admin.PublicURL = ""
	d := startDaemon(t, cfg)
	code, out := d.putTemplate(t, "news", "channel: email\nsubject: News\n---\nleave: {{unsubscribe_url}}\n")
	e, _ := out["error"].(map[string]any)
	if code != http.StatusUnprocessableEntity || e == nil || !strings.Contains(fmt.Sprint(e["message"]), "public_url") {
		t.Fatalf("PUT: %d %v; want 422 naming public_url", code, out)
	}
	r := d.postJSON(t, acmeAPIKey, "", "/api/v1/messages", `{"channel": "email", "subject": "s", "body": "b", "to": "ana@example.com"}`)
	if r.Status != http.StatusAccepted || d.finalStatus(t, r.messageIDs(t)[0]) != "sent" {
		t.Fatalf("send: %d %s", r.Status, r.raw)
	}
	if m := k.waitMail(t, 1); m.Header.Get("List-Unsubscribe") != "" || m.Header.Get("List-Unsubscribe-Post") != "" {
		t.Errorf("headers without public_url: %q, %q", m.Header.Get("List-Unsubscribe"), m.Header.Get("List-Unsubscribe-Post"))
	}
	if code, _, _ := d.public(t, "POST", "/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "List-Unsubscribe=One-Click"); code != http.StatusNotFound {
		t.Errorf("POST /u/ without public_url: %d, want 404", code)
	}
}
