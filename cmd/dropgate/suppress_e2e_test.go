package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
)

// gatedProvider is a fake SMS provider whose first requests wait until
// the test opens the gate, so a job's messages stay queued meanwhile.
type gatedProvider struct {
	mu      sync.Mutex
	to      map[string]int
	started chan struct{} // closed at the first request
	once    sync.Once
	gate    chan struct{}
}

func newGatedProvider() *gatedProvider {
	return &gatedProvider{to: map[string]int{}, started: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct{ To, ID string }
	json.NewDecoder(r.Body).Decode(&body)
	g.once.Do(func() { close(g.started) })
	<-g.gate
	g.mu.Lock()
	g.to[body.To]++
	g.mu.Unlock()
	fmt.Fprintf(w, `{"id": "p-%s"}`, body.ID)
}

func (g *gatedProvider) count(to string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.to[to]
}

// sftpClient logs partner acme in over the daemon's SFTP server.
func sftpClient(t *testing.T, d *testDaemon) *pkgsftp.Client {
	t.Helper()
	conn, err := ssh.Dial("tcp", d.Addrs.SFTP.String(), &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SFTP login: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	sc, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

// A suppression dropped over SFTP while a 10,000-row job waits on its
// provider stops every remaining message to that number: none reaches the
// provider, and the job counts them suppressed.
func TestSuppressionDroppedOverSFTPStopsQueuedMessages(t *testing.T) {
	prov := newGatedProvider()
	srv := httptest.NewServer(prov)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-prov.gate:
		default:
			close(prov.gate)
		}
	})
	cfg := testConfig(t, t.TempDir())
	cfg.Channels = []config.Channel{{Name: "sms", Type: config.ChannelHTTP, URL: srv.URL,
		Body: `{"to": {{json .To}}, "id": {{json .ID}}}`, IDPath: "/id", Concurrency: 4}}
	cfg.Partners[0].Channels = []string{"sms"}
	d := startDaemon(t, cfg)
	renameInto(t, filepath.Join(d.Home("acme"), "templates", "sms_ship.tmpl"), smsTemplate)
	d.waitTemplates(t, 1)

	const rows, target = 10_000, "+351912000999"
	var b strings.Builder
	b.WriteString("phone,first_name,order_id\n")
	want := 0
	for i := 1; i <= rows; i++ {
		phone := fmt.Sprintf("91300%04d", i)
		if i >= 50 && i%100 == 0 {
			phone = "912 000 999" // the number the partner will suppress, written locally
			want++
		}
		fmt.Fprintf(&b, "%s,Ana,%d\n", phone, i)
	}
	sc := sftpClient(t, d)
	if err := sc.Mkdir("/inbox/sms_ship"); err != nil {
		t.Fatal(err)
	}
	sftpPut(t, sc, "/inbox/sms_ship/orders.csv", b.String())
	select {
	case <-prov.started:
	case <-time.After(2 * time.Minute):
		t.Fatal("the job's first message did not reach the provider")
	}

	sftpPut(t, sc, "/suppress/complaints.csv", "phone,reason\n+351 912 000 999,complained\n")
	waitFor(t, time.Minute, "the suppression stored", func() bool {
		var resp struct {
			Suppressions []struct{ Recipient, Channel, Source, Reason string }
		}
		d.API(t, "GET", "/api/v1/suppressions?partner=acme&recipient=912000999", &resp)
		return len(resp.Suppressions) == 1 && resp.Suppressions[0].Recipient == target &&
			resp.Suppressions[0].Source == "suppress/complaints.csv" && resp.Suppressions[0].Reason == "complained"
	})
	// The suppressions are stored first, then the result report is written.
	resultPath := filepath.Join(d.Home("acme"), "reports", "complaints.csv.result.csv")
	waitFor(t, time.Minute, "the result report", func() bool {
		_, err := os.Stat(resultPath)
		return err == nil
	})
	result := readCSV(t, resultPath)
	if len(result) != 2 || result[1][1] != "1" || result[1][2] != "0" {
		t.Errorf("result report = %v, want 1 added, 0 already suppressed", result)
	}
	var files struct {
		Files []struct{ Name, Status string }
	}
	d.API(t, "GET", "/api/v1/files?partner=acme", &files)
	listed := false
	for _, f := range files.Files {
		listed = listed || (f.Name == "suppress/complaints.csv" && f.Status == "queued")
	}
	if !listed {
		t.Errorf("suppress/complaints.csv not listed as applied in /api/v1/files: %+v", files.Files)
	}

	close(prov.gate)
	// 10,000 provider calls take a while on a busy machine: a generous
	// deadline, not a speed claim.
	var job apiJob
	waitFor(t, 3*time.Minute, "the job done", func() bool {
		var resp struct{ Jobs []apiJob }
		d.API(t, "GET", "/api/v1/jobs?partner=acme", &resp)
		for _, j := range resp.Jobs {
			if j.FileName == "inbox/sms_ship/orders.csv" && j.Status == "done" {
				job = j
				return true
			}
		}
		return false
	})
	if job.Counts["suppressed"] != want || job.Counts["sent"] != rows-want {
		t.Errorf("job counts = %v, want %d suppressed and %d sent", job.Counts, want, rows-want)
	}
	if n := prov.count(target); n != 0 {
		t.Errorf("the provider got %d messages for the suppressed number", n)
	}
}

// startSuppressDaemon is startAPIDaemon with a second SMS channel and a
// second partner, beta, with its own key.
func startSuppressDaemon(t *testing.T) *testDaemon {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Channels = append(cfg.Channels, config.Channel{Name: "sms2", Type: config.ChannelOutbox, Recipient: "phone", Concurrency: 1})
	cfg.Partners[0].APIKey = acmeAPIKey
	cfg.Partners[0].Channels = []string{"email", "sms", "sms2"}
	beta := cfg.Partners[0]
	beta.Name, beta.APIKey = "beta", "beta-api-key-0123456789abcdef"
	cfg.Partners = append(cfg.Partners, beta)
	return startDaemon(t, cfg)
}

// messageStatus waits until the message leaves queued and returns its status.
func (d *testDaemon) finalStatus(t *testing.T, id int64) string {
	t.Helper()
	var m struct{ Status string }
	waitFor(t, time.Minute, fmt.Sprintf("message %d final", id), func() bool {
		d.API(t, "GET", fmt.Sprintf("/api/v1/messages/%d", id), &m)
		return m.Status == "sent" || m.Status == "suppressed" || m.Status == "failed"
	})
	return m.Status
}

// An API send to a suppressed address ends suppressed; a suppression on one
// channel leaves the others alone.
func TestAPISendToSuppressedRecipientEndsSuppressedPerChannel(t *testing.T) {
	d := startSuppressDaemon(t)
	res := d.postJSON(t, acmeAPIKey, "", "/api/v1/suppressions", `{"suppressions": [
		{"email": " Ana@Example.COM ", "reason": "unsubscribed"},
		{"phone": "912 345 678", "channel": "sms"}]}`)
	if res.Status != http.StatusCreated || res.Body["added"] != float64(2) {
		t.Fatalf("POST suppressions: %d %s", res.Status, res.raw)
	}
	send := func(channel, to string) int64 {
		r := d.postJSON(t, acmeAPIKey, "", "/api/v1/messages", fmt.Sprintf(`{"channel": %q, "subject": "s", "body": "b", "to": %q}`, channel, to))
		if r.Status != http.StatusAccepted {
			t.Fatalf("send %s %s: %d %s", channel, to, r.Status, r.raw)
		}
		return r.messageIDs(t)[0]
	}
	for _, c := range []struct{ channel, to, want string }{
		{"email", "ana@example.com", "suppressed"},
		{"email", "ANA@example.com", "suppressed"},
		{"email", "rui@example.com", "sent"},
		{"sms", "+351912345678", "suppressed"},
		{"sms2", "+351912345678", "sent"},
	} {
		if got := d.finalStatus(t, send(c.channel, c.to)); got != c.want {
			t.Errorf("%s to %s: %s, want %s", c.channel, c.to, got, c.want)
		}
	}
	for _, m := range d.OutboxLines(t, "email") {
		if strings.EqualFold(m["to"].(string), "ana@example.com") {
			t.Errorf("a suppressed address reached the outbox: %v", m)
		}
	}
	if lines := d.OutboxLines(t, "sms"); len(lines) != 0 {
		t.Errorf("sms outbox = %v, want nothing", lines)
	}

	// Adding again is no error: already suppressed.
	res = d.postJSON(t, acmeAPIKey, "", "/api/v1/suppressions", `{"email": "ana@example.com"}`)
	if res.Status != http.StatusCreated || res.Body["added"] != float64(0) || res.Body["already_suppressed"] != float64(1) {
		t.Errorf("POST again: %d %s", res.Status, res.raw)
	}
}

// A bad request is refused whole with each problem by index; other
// partners' suppressions are invisible (404) to a partner key.
func TestSuppressionAPIChecksAndIsolatesPartners(t *testing.T) {
	d := startSuppressDaemon(t)
	const betaKey = "beta-api-key-0123456789abcdef"
	res := d.postJSON(t, acmeAPIKey, "", "/api/v1/suppressions", `{"suppressions": [
		{"email": "ok@example.com"}, {"email": "not-an-address"}, {"phone": "12"}, {"email": "x@example.com", "channel": "fax"}, {}]}`)
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad POST: %d %s", res.Status, res.raw)
	}
	fields := map[string]bool{}
	for _, p := range res.Body["error"].(map[string]any)["details"].([]any) {
		fields[p.(map[string]any)["field"].(string)] = true
	}
	for _, f := range []string{"suppressions[1].email", "suppressions[2].phone", "suppressions[3].channel", "suppressions[4].email"} {
		if !fields[f] {
			t.Errorf("no problem for %s in %s", f, res.raw)
		}
	}
	if fields["suppressions[0].email"] {
		t.Errorf("the good entry was reported: %s", res.raw)
	}
	list := func(token, query string) (int, []map[string]any) {
		req, _ := http.NewRequest("GET", "http://"+d.Addrs.Admin.String()+"/api/v1/suppressions"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Suppressions []map[string]any }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Suppressions
	}
	if _, got := list(acmeAPIKey, ""); len(got) != 0 {
		t.Fatalf("a refused request stored %v", got)
	}

	res = d.postJSON(t, acmeAPIKey, "", "/api/v1/suppressions", `{"email": "ana@example.com"}`)
	if res.Status != http.StatusCreated {
		t.Fatal(res.raw)
	}
	id := int64(res.Body["suppressions"].([]any)[0].(map[string]any)["id"].(float64))
	if r := d.postJSON(t, betaKey, "", "/api/v1/suppressions", `{"partner": "acme", "email": "bob@example.com"}`); r.Status != http.StatusForbidden {
		t.Errorf("beta suppressing for acme: %d %s", r.Status, r.raw)
	}
	if code, got := list(betaKey, ""); code != http.StatusOK || len(got) != 0 {
		t.Errorf("beta sees %d %v, want none of acme's", code, got)
	}
	if code, _ := list(betaKey, "?partner=acme"); code != http.StatusForbidden {
		t.Errorf("beta listing acme's: %d", code)
	}
	del := func(token, path string) int {
		req, _ := http.NewRequest("DELETE", "http://"+d.Addrs.Admin.String()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del(betaKey, fmt.Sprintf("/api/v1/suppressions/%d", id)); code != http.StatusNotFound {
		t.Errorf("beta deleting acme's suppression: %d, want 404", code)
	}
	if code := del(betaKey, "/api/v1/suppressions?recipient=ana@example.com"); code != http.StatusNotFound {
		t.Errorf("beta deleting by recipient: %d, want 404", code)
	}
	if code, got := list(acmeAPIKey, "?recipient=ANA@example.com"); code != http.StatusOK || len(got) != 1 {
		t.Errorf("acme's own: %d %v", code, got)
	}
	if code := del(acmeAPIKey, fmt.Sprintf("/api/v1/suppressions/%d", id)); code != http.StatusOK {
		t.Errorf("acme deleting its own: %d", code)
	}
	if _, got := list(acmeAPIKey, ""); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}
	// Cursor paging.
	for i := range 3 {
		d.postJSON(t, acmeAPIKey, "", "/api/v1/suppressions", fmt.Sprintf(`{"email": "p%d@example.com"}`, i))
	}
	var page struct {
		Suppressions []map[string]any
		NextAfter    int64 `json:"next_after"`
	}
	d.API(t, "GET", "/api/v1/suppressions?partner=acme&limit=2", &page)
	if len(page.Suppressions) != 2 || page.NextAfter == 0 {
		t.Fatalf("first page: %+v", page)
	}
	next := page.NextAfter
	page.NextAfter = 0
	d.API(t, "GET", fmt.Sprintf("/api/v1/suppressions?partner=acme&limit=2&after=%d", next), &page)
	if len(page.Suppressions) != 1 || page.Suppressions[0]["recipient"] != "p2@example.com" || page.NextAfter != 0 {
		t.Errorf("second page: %+v", page)
	}
}

// A suppress/ file with a bad row is rejected whole: its errors report
// names line and column, and nothing is suppressed.
func TestSuppressFileWithABadRowAppliesNothing(t *testing.T) {
	d := startSuppressDaemon(t)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "suppress", "bounces.csv"),
		"email;phone;channel;reason\nana@example.com;;;bounced\n;12;;bad number\nrui@example.com;;fax;x\n")
	report := filepath.Join(home, "reports", "bounces.csv.errors.csv")
	waitFor(t, time.Minute, "the errors report", func() bool {
		_, err := os.Stat(report)
		return err == nil
	})
	rows := readCSV(t, report)
	got := map[string]bool{}
	for _, r := range rows[1:] {
		got[r[0]+" "+r[1]] = true
	}
	if !got["3 phone"] || !got["4 channel"] || len(rows) != 3 {
		t.Errorf("errors report = %v, want line 3 phone and line 4 channel", rows)
	}
	var resp struct{ Suppressions []any }
	d.API(t, "GET", "/api/v1/suppressions?partner=acme", &resp)
	if len(resp.Suppressions) != 0 {
		t.Errorf("a rejected file stored %v", resp.Suppressions)
	}
	var files struct {
		Files []struct{ Name, Status string }
	}
	d.API(t, "GET", "/api/v1/files?partner=acme&status=rejected", &files)
	if len(files.Files) != 1 || files.Files[0].Name != "suppress/bounces.csv" {
		t.Errorf("rejected files = %+v", files.Files)
	}
	// Fixed, the same name is taken and applied.
	renameInto(t, filepath.Join(home, "suppress", "bounces.csv"), "email,reason\nana@example.com,bounced\n")
	waitFor(t, time.Minute, "the fixed file applied", func() bool {
		d.API(t, "GET", "/api/v1/suppressions?partner=acme", &resp)
		return len(resp.Suppressions) == 1
	})
}
