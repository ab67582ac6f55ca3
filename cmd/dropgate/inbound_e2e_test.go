package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

const smsInboundSecret = "sms-inbound-secret-0123456789"

// inboundConfig has two http SMS channels to a fake provider, both used
// by acme and beta: "sms" with a configured inbound secret whose replies
// opt out of acme only, and "sms2" whose secret is generated and whose
// replies opt out of every partner that uses it.
func inboundConfig(t *testing.T) *config.Config {
	t.Helper()
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": "p-1"}`)
	}))
	t.Cleanup(prov.Close)
	cfg := testConfig(t, t.TempDir())
	sms := config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: prov.URL, Recipient: "phone", IDPath: "/id",
		Body: `{"to": {{json .To}}, "text": {{json .Body}}}`, Concurrency: 1,
		Inbound: &config.Inbound{Secret: smsInboundSecret, FromPath: "/data/from", TextPath: "/data/text", Partner: "acme"}}
	sms2 := sms
	sms2.Name, sms2.Inbound = "sms2", &config.Inbound{FromPath: "/From", TextPath: "/Body", Keywords: []string{"STOP", "PARAR"}}
	cfg.Channels = []config.Channel{cfg.Channels[0], sms, sms2}
	cfg.Partners[0].APIKey = acmeAPIKey
	cfg.Partners[0].Channels = []string{"email", "sms", "sms2"}
	beta := cfg.Partners[0]
	beta.Name, beta.APIKey = "beta", betaAPIKey
	cfg.Partners = append(cfg.Partners, beta)
	return cfg
}

// inbound posts a provider's JSON to a channel's inbound route.
func (d *testDaemon) inbound(t *testing.T, channel string, auth func(*http.Request), body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+d.Addrs.Admin.String()+"/api/v1/inbound/"+channel, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("inbound %s: %d %v in %s", channel, resp.StatusCode, err, raw)
	}
	return resp.StatusCode, out
}

func bearer(secret string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }
}

// A STOP replied to an SMS suppresses the number (normalised with the
// partner's region) for the channel's partner: its next API send ends
// suppressed, the other partner's is sent. A wrong secret is 401 and
// changes nothing; another text is accepted and ignored.
func TestInboundStopSuppressesTheNumber(t *testing.T) {
	cfg := inboundConfig(t)
	seedContacts(t, cfg)
	d := startDaemon(t, cfg)
	send := func(key, channel string) string {
		r := d.postJSON(t, key, "", "/api/v1/messages", fmt.Sprintf(`{"channel": %q, "body": "Sale!", "to": "+351912345678"}`, channel))
		if r.Status != http.StatusAccepted {
			t.Fatalf("send: %d %s", r.Status, r.raw)
		}
		return d.finalStatus(t, r.messageIDs(t)[0])
	}
	stop := `{"data": {"from": "912 345 678", "text": "  stop \n"}}`
	for _, auth := range []func(*http.Request){nil, bearer("wrong-secret-0123456789"), bearer(smsInboundSecret[:len(smsInboundSecret)-1]),
		func(r *http.Request) { r.SetBasicAuth("twilio", "nope") }} {
		if code, out := d.inbound(t, "sms", auth, stop); code != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d %v", code, out)
		}
	}
	if code, _ := d.inbound(t, "email", bearer(smsInboundSecret), stop); code != http.StatusNotFound {
		t.Fatalf("a channel without inbound: %d", code)
	}
	if code, out := d.inbound(t, "sms", bearer(smsInboundSecret), `{"data": {"from": "912345678", "text": "stop please"}}`); code != http.StatusOK || out["opt_out"] != false {
		t.Fatalf("another text: %d %v", code, out)
	}
	if code, out := d.inbound(t, "sms", bearer(smsInboundSecret), `{"data": {"text": "STOP"}}`); code != http.StatusUnprocessableEntity {
		t.Fatalf("no sender: %d %v", code, out)
	}
	if got := send(acmeAPIKey, "sms"); got != "sent" {
		t.Fatalf("before the STOP: %s", got)
	}

	code, out := d.inbound(t, "sms", bearer(smsInboundSecret), stop)
	if code != http.StatusOK || out["opt_out"] != true || fmt.Sprint(out["partners"]) != "[acme]" {
		t.Fatalf("STOP: %d %v", code, out)
	}
	var sups struct{ Suppressions []store.Suppression }
	d.API(t, "GET", "/api/v1/suppressions?partner=acme", &sups)
	if len(sups.Suppressions) != 1 || sups.Suppressions[0].Recipient != "+351912345678" || sups.Suppressions[0].Source != "inbound:sms" {
		t.Fatalf("acme suppressions = %+v", sups.Suppressions)
	}
	if got := send(acmeAPIKey, "sms"); got != "suppressed" {
		t.Errorf("acme after the STOP: %s, want suppressed", got)
	}
	if got := send(acmeAPIKey, "sms2"); got != "suppressed" {
		t.Errorf("acme on its other channel: %s, want suppressed (an opt-out is from the partner)", got)
	}
	if got := send(betaAPIKey, "sms"); got != "sent" {
		t.Errorf("beta, not named by the channel's inbound partner: %s, want sent", got)
	}

	// sms2's secret was generated into secrets/, 0600; Basic auth with it
	// as password works, its own keyword list applies, and its replies opt
	// out of every partner that uses the channel.
	path := filepath.Join(cfg.SecretsDir(), "inbound-sms2")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated secret: %v %v", fi, err)
	}
	raw, _ := os.ReadFile(path)
	secret := strings.TrimSpace(string(raw))
	basic := func(r *http.Request) { r.SetBasicAuth("provider", secret) }
	if code, out := d.inbound(t, "sms2", basic, `{"From": "+351 913 000 111", "Body": "QUIT"}`); code != http.StatusOK || out["opt_out"] != false {
		t.Fatalf("QUIT is not in sms2's keywords: %d %v", code, out)
	}
	if code, out := d.inbound(t, "sms2", basic, `{"From": "+351 913 000 111", "Body": "Parar"}`); code != http.StatusOK || fmt.Sprint(out["partners"]) != "[acme beta]" {
		t.Fatalf("PARAR on sms2: %d %v", code, out)
	}
	d.API(t, "GET", "/api/v1/suppressions?partner=beta", &sups)
	if len(sups.Suppressions) != 1 || sups.Suppressions[0].Recipient != "+351913000111" {
		t.Fatalf("beta suppressions = %+v", sups.Suppressions)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := memberships(t, cfg, "acme", "+351912345678"), map[string]string{"news": "unsubscribed", "offers": "unsubscribed"}; !maps.Equal(got, want) {
		t.Errorf("acme lists after STOP = %v, want %v", got, want)
	}
	if got, want := memberships(t, cfg, "beta", "+351912345678"), map[string]string{"news": "subscribed"}; !maps.Equal(got, want) {
		t.Errorf("beta lists = %v, want %v", got, want)
	}
}
