package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const acmeAPIKey = "acme-api-key-0123456789abcdef"

// apiResult is an answer of the admin API: status, headers, decoded body.
type apiResult struct {
	Status int
	Header http.Header
	Body   map[string]any
	raw    string
}

// postJSON posts body to path with a bearer token and an optional
// Idempotency-Key.
func (d *testDaemon) postJSON(t *testing.T, token, key, path, body string) apiResult {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+d.Addrs.Admin.String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := apiResult{Status: resp.StatusCode, Header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &res.Body); err != nil {
		t.Fatalf("POST %s: %v in %s", path, err, raw)
	}
	return res
}

// messageIDs are the ids of an accepted send, in request order.
func (r apiResult) messageIDs(t *testing.T) []int64 {
	t.Helper()
	msgs, _ := r.Body["messages"].([]any)
	var ids []int64
	for _, m := range msgs {
		ids = append(ids, int64(m.(map[string]any)["id"].(float64)))
	}
	if len(ids) == 0 {
		t.Fatalf("no message ids in %s", r.raw)
	}
	return ids
}

// startAPIDaemon is a daemon whose partner acme has an API key and the
// shipped (email) and sms_ship (sms) templates stored.
func startAPIDaemon(t *testing.T) *testDaemon {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].APIKey = acmeAPIKey
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), shippedTemplate)
	renameInto(t, filepath.Join(home, "templates", "sms_ship.tmpl"), smsTemplate)
	d.waitTemplates(t, 2)
	return d
}

func TestAPISendRendersStoresAndDelivers(t *testing.T) {
	d := startAPIDaemon(t)
	res := d.postJSON(t, testAdminToken, "", "/api/v1/messages", `{"partner": "acme", "template": "sms_ship",
		"recipients": [{"to": "912 345 678", "ref": "o-1", "vars": {"first_name": "Zé", "order_id": 7}},
		               {"to": "+351 913 000 111", "ref": "o-2", "vars": {"first_name": "Rui", "order_id": "B-8"}}]}`)
	if res.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.Status, res.raw)
	}
	ids := res.messageIDs(t)
	if first := res.Body["messages"].([]any)[0].(map[string]any); first["to"] != "+351912345678" || first["status"] != "queued" {
		t.Errorf("first message in the answer = %v, want the E.164 number, queued", first)
	}
	waitFor(t, 10*time.Second, "both API messages sent", func() bool {
		sent := 0
		for _, id := range ids {
			var m struct{ Status string }
			d.API(t, "GET", fmt.Sprintf("/api/v1/messages/%d", id), &m)
			if m.Status == "sent" {
				sent++
			}
		}
		return sent == 2
	})
	got := map[string]string{}
	for _, m := range d.OutboxLines(t, "sms") {
		got[m["ref"].(string)] = m["to"].(string) + " " + m["body"].(string)
	}
	if got["o-1"] != "+351912345678 Hi Zé, order 7 ships today." || got["o-2"] != "+351913000111 Hi Rui, order B-8 ships today." {
		t.Errorf("sms outbox = %v", got)
	}

	// A literal body on a named channel, one recipient inline, with the
	// partner's own key (no partner field needed).
	res = d.postJSON(t, acmeAPIKey, "", "/api/v1/messages", `{"channel": "email", "subject": "Hello", "body": "Plain text.", "to": "ana@example.com", "ref": "lit"}`)
	if res.Status != http.StatusAccepted {
		t.Fatalf("literal send: status %d: %s", res.Status, res.raw)
	}
	waitFor(t, 10*time.Second, "literal email in the outbox", func() bool {
		for _, m := range d.OutboxLines(t, "email") {
			if m["ref"] == "lit" && m["subject"] == "Hello" && m["body"] == "Plain text." && m["to"] == "ana@example.com" {
				return true
			}
		}
		return false
	})
}

func TestAPISendRefusesBadRequestsWholeAndQueuesNothing(t *testing.T) {
	d := startAPIDaemon(t)
	for name, c := range map[string]struct {
		token, body string
		status      int
		fields      []string // the details' fields, in order
	}{
		"bad phone and missing variable": {testAdminToken, `{"partner": "acme", "template": "sms_ship", "recipients": [
			{"to": "+351 91", "vars": {"first_name": "A", "order_id": "1"}},
			{"to": "912345678", "vars": {"first_name": "B"}}]}`, 422, []string{"recipients[0].to", "recipients[1].vars.order_id"}},
		"unknown template":             {testAdminToken, `{"partner": "acme", "template": "nope", "to": "a@example.com"}`, 422, []string{"template"}},
		"unknown channel":              {testAdminToken, `{"partner": "acme", "channel": "fax", "body": "x", "to": "a@example.com"}`, 422, []string{"channel"}},
		"bad email for an email":       {acmeAPIKey, `{"template": "shipped", "to": "Ana <ana@example.com>", "vars": {"first_name": "A", "order_id": "1"}}`, 422, []string{"recipients[0].to"}},
		"nested variable":              {acmeAPIKey, `{"template": "shipped", "to": "a@example.com", "vars": {"first_name": {"x": 1}, "order_id": "1"}}`, 422, []string{"recipients[0].vars.first_name"}},
		"bad send_at":                  {acmeAPIKey, `{"template": "shipped", "send_at": "tomorrow", "to": "a@example.com", "vars": {"first_name": "A", "order_id": "1"}}`, 422, []string{"send_at"}},
		"unknown partner":              {testAdminToken, `{"partner": "zed", "body": "x", "to": "a@example.com"}`, 422, []string{"partner"}},
		"admin names no partner":       {testAdminToken, `{"body": "x", "to": "a@example.com"}`, 400, nil},
		"partner key as another":       {acmeAPIKey, `{"partner": "zed", "body": "x", "to": "a@example.com"}`, 403, nil},
		"unknown field":                {acmeAPIKey, `{"body": "x", "to": "a@example.com", "colour": "red"}`, 400, nil},
		"no recipient":                 {acmeAPIKey, `{"body": "x"}`, 422, []string{"recipients"}},
		"inline and list":              {acmeAPIKey, `{"body": "x", "to": "a@example.com", "recipients": [{"to": "b@example.com"}]}`, 422, []string{"to"}},
		"template and body both given": {acmeAPIKey, `{"template": "shipped", "body": "x", "to": "a@example.com", "vars": {"first_name": "A", "order_id": "1"}}`, 422, []string{"template"}},
	} {
		t.Run(name, func(t *testing.T) {
			res := d.postJSON(t, c.token, "", "/api/v1/messages", c.body)
			if res.Status != c.status {
				t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.raw)
			}
			e, _ := res.Body["error"].(map[string]any)
			if e == nil || e["message"] == "" {
				t.Fatalf("no JSON error: %s", res.raw)
			}
			var fields []string
			details, _ := e["details"].([]any)
			for _, p := range details {
				fields = append(fields, p.(map[string]any)["field"].(string))
			}
			if strings.Join(fields, " ") != strings.Join(c.fields, " ") {
				t.Errorf("details fields %v, want %v: %s", fields, c.fields, res.raw)
			}
		})
	}
	var jobs struct{ Jobs []struct{ ID int64 } }
	d.API(t, "GET", "/api/v1/jobs", &jobs)
	if len(jobs.Jobs) != 0 {
		t.Errorf("refused requests created %d jobs", len(jobs.Jobs))
	}
}

func TestAPISendIdempotencyKeyCreatesOneJob(t *testing.T) {
	d := startAPIDaemon(t)
	body := `{"template": "shipped", "to": "ana@example.com", "ref": "k1", "vars": {"first_name": "Ana", "order_id": "A-1"}}`
	first := d.postJSON(t, acmeAPIKey, "order-A-1-shipped", "/api/v1/messages", body)
	if first.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.Status, first.raw)
	}
	again := d.postJSON(t, acmeAPIKey, "order-A-1-shipped", "/api/v1/messages", body)
	if again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v %s", again.Status, again.Header, again.raw)
	}
	if again.Body["job_id"] != first.Body["job_id"] || again.messageIDs(t)[0] != first.messageIDs(t)[0] {
		t.Errorf("retry answered job %v message %v, want job %v message %v", again.Body["job_id"], again.messageIDs(t), first.Body["job_id"], first.messageIDs(t))
	}
	other := d.postJSON(t, acmeAPIKey, "order-A-1-shipped", "/api/v1/messages", strings.Replace(body, "A-1", "A-2", 1))
	if other.Status != http.StatusConflict {
		t.Errorf("same key, other request: %d %s", other.Status, other.raw)
	}
	// The key belongs to the partner, not the token: the admin sending the
	// same thing as acme replays it too.
	asAdmin := d.postJSON(t, testAdminToken, "order-A-1-shipped", "/api/v1/messages", `{"partner": "acme", "to": "ana@example.com", "vars": {"order_id": "A-1", "first_name": "Ana"}, "ref": "k1", "template": "shipped"}`)
	if asAdmin.Status != http.StatusOK || asAdmin.Body["job_id"] != first.Body["job_id"] {
		t.Errorf("admin retry as acme: %d %s", asAdmin.Status, asAdmin.raw)
	}
	// Another key is another send.
	if res := d.postJSON(t, acmeAPIKey, "another-key", "/api/v1/messages", body); res.Status != http.StatusAccepted {
		t.Errorf("new key: %d %s", res.Status, res.raw)
	}
	// Once every job is done nothing more goes out: count then, rather
	// than sleep and hope a stray third send would have arrived by then.
	var resp struct{ Jobs []apiJob }
	waitFor(t, 10*time.Second, "every job done", func() bool {
		d.API(t, "GET", "/api/v1/jobs", &resp)
		for _, j := range resp.Jobs {
			if j.Status != "done" {
				return false
			}
		}
		return len(resp.Jobs) > 0
	})
	if n := len(d.OutboxLines(t, "email")); n != 2 || len(resp.Jobs) != 2 {
		t.Errorf("outbox has %d emails from %d jobs, want 2 of each (one per key)", n, len(resp.Jobs))
	}
}

// TestAPISendJumpsAheadOfABulkFile: with a bulk file of 300 rows going out
// at 50 a second, an API message sent after the file was queued is
// delivered long before the file's last rows.
func TestAPISendJumpsAheadOfABulkFile(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].APIKey = acmeAPIKey
	for i := range cfg.Channels {
		if cfg.Channels[i].Name == "email" {
			cfg.Channels[i].Rate, cfg.Channels[i].Burst, cfg.Channels[i].Concurrency = 50, 1, 1
		}
	}
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), shippedTemplate)
	d.waitTemplates(t, 1)
	var csv bytes.Buffer
	csv.WriteString("email,first_name,order_id\n")
	for i := range 300 {
		fmt.Fprintf(&csv, "bulk%d@example.com,B,%d\n", i, i)
	}
	renameInto(t, filepath.Join(home, "inbox", "shipped", "bulk.csv"), csv.String())
	waitFor(t, 10*time.Second, "bulk job sending", func() bool { return len(d.OutboxLines(t, "email")) >= 10 })

	res := d.postJSON(t, acmeAPIKey, "", "/api/v1/messages", `{"template": "shipped", "to": "vip@example.com", "ref": "vip", "vars": {"first_name": "V", "order_id": "0"}}`)
	if res.Status != http.StatusAccepted {
		t.Fatalf("send: %d %s", res.Status, res.raw)
	}
	// Counted once the message is stored (the answer came): what went out
	// while the request was answered depends on the machine's load, what
	// goes out after it only on the sender.
	accepted := len(d.OutboxLines(t, "email"))
	waitFor(t, 10*time.Second, "the API message", func() bool {
		for _, m := range d.OutboxLines(t, "email") {
			if m["ref"] == "vip" {
				return true
			}
		}
		return false
	})
	lines := d.OutboxLines(t, "email")
	pos := slices.IndexFunc(lines, func(m map[string]any) bool { return m["ref"] == "vip" })
	t.Logf("the API message went out as email %d, %d bulk messages after it was accepted", pos+1, pos-accepted)
	// At 50 a second the sender claims 5 bulk messages at a time
	// (sender/channel.go): ahead of the API message can be the worker's one,
	// the feed's 5, the dispatcher's batch in hand and a claim under way
	// when it was stored, 16 at most; 20 is a loose bound, 290 would be no
	// priority.
	if pos-accepted > 20 {
		t.Errorf("the API message went out after %d more of the 300 bulk messages once accepted", pos-accepted)
	}
}
