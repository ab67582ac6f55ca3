package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// promoTemplate is an SMS template whose body is filled in per contact.
const promoTemplate = `channel: sms
---
Olá {{.first_name}}, {{.city}} has a gift for you (ref {{.ref}}).
`

// listSendFixture is a daemon with partners acme (API key, template promo,
// list vip) and beta (API key), and a second store handle on the daemon's
// database for making contacts.
type listSendFixture struct {
	d     *testDaemon
	st    *store.Store
	list  store.List
	byRef map[string]int64 // contact ids
}

func newListSendFixture(t *testing.T) *listSendFixture {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].APIKey = acmeAPIKey
	cfg.Partners = append(cfg.Partners, config.Partner{Name: "beta", PasswordHash: cfg.Partners[0].PasswordHash, APIKey: betaAPIKey,
		Region: "PT", Timezone: "Europe/Lisbon", Channels: []string{"sms"}})
	d := startDaemon(t, cfg)
	renameInto(t, filepath.Join(d.Home("acme"), "templates", "promo.tmpl"), promoTemplate)
	d.waitTemplates(t, 1)
	ctx := context.Background()
	st, err := storetest.OpenAt(t, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &listSendFixture{d: d, st: st, byRef: map[string]int64{}}
	if f.list, err = st.EnsureList(ctx, "acme", "vip"); err != nil {
		t.Fatal(err)
	}
	// beta has a list of the same name: names are per partner.
	if _, err := st.EnsureList(ctx, "beta", "vip"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *listSendFixture) put(t *testing.T, in store.ContactInput) {
	t.Helper()
	c, _, err := f.st.PutContact(context.Background(), f.list, in)
	if err != nil {
		t.Fatalf("contact %s: %v", in.Ref, err)
	}
	f.byRef[in.Ref] = c.ID
}

func (f *listSendFixture) send(t *testing.T, token, list, body string) apiResult {
	t.Helper()
	return f.d.postJSON(t, token, "", "/api/v1/lists/"+list+"/sends", body)
}

func num(v any) int { n, _ := v.(float64); return int(n) }

// The test: a dry run counts, a real send queues the matched
// contacts' messages rendered with their own attributes and delivers them
// through the outbox; a contact the segment fails on is skipped and
// counted; a contact that cannot be messaged is reported with the job; a
// bad expression is 422 with its position.
func TestListSendDryRunThenRealDeliversThroughOutbox(t *testing.T) {
	f := newListSendFixture(t)
	recent := time.Now().Add(-24 * time.Hour)
	for _, c := range []store.ContactInput{
		{Phone: "+351912000001", Ref: "c-ana", Attributes: map[string]any{"first_name": "Ana", "city": "Lisbon", "orders": int64(5), "last_order_at": recent}},
		{Phone: "+351912000002", Ref: "c-rui", Attributes: map[string]any{"first_name": "Rui", "city": "Lisbon", "orders": int64(1), "last_order_at": recent}},
		{Phone: "+351912000003", Ref: "c-ze", Attributes: map[string]any{"first_name": "Zé", "city": "Porto", "orders": int64(9), "last_order_at": recent}},
		// No orders: "orders > 2" cannot be evaluated on it.
		{Phone: "+351912000004", Ref: "c-eva", Attributes: map[string]any{"first_name": "Eva", "city": "Lisbon"}},
		// Unsubscribed: never considered.
		{Phone: "+351912000005", Ref: "c-lia", Status: store.Unsubscribed, Attributes: map[string]any{"first_name": "Lia", "city": "Lisbon", "orders": int64(7), "last_order_at": recent}},
		// Matched, but no phone for the SMS template.
		{Email: "bo@example.com", Ref: "c-bo", Attributes: map[string]any{"first_name": "Bo", "city": "Lisbon", "orders": int64(3), "last_order_at": recent}},
		// Matched, but no first_name for the template.
		{Phone: "+351912000007", Ref: "c-anon", Attributes: map[string]any{"city": "Lisbon", "orders": int64(4), "last_order_at": recent}},
		{Phone: "+351912000008", Ref: "c-mia", Attributes: map[string]any{"first_name": "Mia", "city": "Lisbon", "orders": int64(3), "last_order_at": recent}},
	} {
		f.put(t, c)
	}
	segment := `city == \"Lisbon\" && orders > 2 && last_order_at > now() - duration(\"720h\")`

	dry := f.send(t, acmeAPIKey, "vip", `{"template": "promo", "segment": "`+segment+`", "dry_run": true}`)
	if dry.Status != http.StatusOK {
		t.Fatalf("dry run: %d %s", dry.Status, dry.raw)
	}
	if num(dry.Body["considered"]) != 7 || num(dry.Body["matched"]) != 4 || num(dry.Body["skipped_by_error"]) != 1 || dry.Body["job_id"] != nil {
		t.Fatalf("dry run answer = %s; want 7 considered, 4 matched, 1 skipped by error, no job", dry.raw)
	}
	if !strings.Contains(dry.Body["first_skip_error"].(string), fmt.Sprintf("contact %d", f.byRef["c-eva"])) {
		t.Errorf("first_skip_error = %v, want contact c-eva's", dry.Body["first_skip_error"])
	}
	if lines := f.d.OutboxLines(t, "sms"); len(lines) != 0 {
		t.Fatalf("a dry run sent %d messages", len(lines))
	}

	res := f.send(t, acmeAPIKey, "vip", `{"template": "promo", "segment": "`+segment+`"}`)
	if res.Status != http.StatusAccepted {
		t.Fatalf("send: %d %s", res.Status, res.raw)
	}
	if num(res.Body["considered"]) != 7 || num(res.Body["matched"]) != 4 || num(res.Body["skipped_by_error"]) != 1 ||
		num(res.Body["rejected"]) != 2 || num(res.Body["queued"]) != 2 || num(res.Body["job_id"]) == 0 {
		t.Fatalf("send answer = %s; want 7 considered, 4 matched, 1 skipped, 2 rejected, 2 queued and a job", res.raw)
	}
	jobID := num(res.Body["job_id"])
	var job struct {
		Source   string
		Status   string
		Counts   map[string]int
		ListSend struct {
			List     string
			Matched  int
			Rejected int
			Errors   []struct {
				ContactID int64 `json:"contact_id"`
				Column    string
				Error     string
			}
		} `json:"list_send"`
	}
	waitFor(t, 15*time.Second, "the list job to be done", func() bool {
		f.d.API(t, "GET", fmt.Sprintf("/api/v1/jobs/%d", jobID), &job)
		return job.Status == store.JobDone
	})
	if job.Source != store.SourceList || job.Counts["sent"] != 2 {
		t.Errorf("job = %+v, want source list and 2 sent", job)
	}
	if job.ListSend.List != "vip" || job.ListSend.Matched != 4 || job.ListSend.Rejected != 2 || len(job.ListSend.Errors) != 2 {
		t.Fatalf("job's list_send = %+v", job.ListSend)
	}
	rejected := map[int64]string{}
	for _, e := range job.ListSend.Errors {
		rejected[e.ContactID] = e.Column + ": " + e.Error
	}
	if !strings.HasPrefix(rejected[f.byRef["c-bo"]], "phone: ") || !strings.HasPrefix(rejected[f.byRef["c-anon"]], "first_name: ") {
		t.Errorf("rejected contacts = %v, want c-bo (no phone) and c-anon (no first_name)", rejected)
	}
	var got []string
	for _, m := range f.d.OutboxLines(t, "sms") {
		got = append(got, m["to"].(string)+" "+strings.TrimSpace(m["body"].(string)))
	}
	sort.Strings(got)
	want := []string{
		"+351912000001 Olá Ana, Lisbon has a gift for you (ref c-ana).",
		"+351912000008 Olá Mia, Lisbon has a gift for you (ref c-mia).",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("outbox:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, tc := range []struct{ segment, field string }{
		{`city == `, "segment"},
		{`city == \"Lisbon\" &&\n launch(1)`, "segment"},
	} {
		bad := f.send(t, acmeAPIKey, "vip", `{"template": "promo", "segment": "`+tc.segment+`"}`)
		if bad.Status != http.StatusUnprocessableEntity {
			t.Fatalf("segment %s: %d %s, want 422", tc.segment, bad.Status, bad.raw)
		}
		details := bad.Body["error"].(map[string]any)["details"].([]any)
		d0 := details[0].(map[string]any)
		if d0["field"] != tc.field || num(d0["line"]) == 0 || num(d0["column"]) == 0 {
			t.Errorf("segment %s: details = %v, want the field and a line and column", tc.segment, details)
		}
	}
	bad := f.send(t, acmeAPIKey, "vip", `{"template": "promo", "segment": "city == \"Lisbon\" &&\n launch(1)"}`)
	if d0 := bad.Body["error"].(map[string]any)["details"].([]any)[0].(map[string]any); num(d0["line"]) != 2 || num(d0["column"]) != 2 {
		t.Errorf("unknown function: details = %v, want line 2, column 2", d0)
	}
	var jobs struct{ Jobs []struct{ ID int } }
	f.d.API(t, "GET", "/api/v1/jobs?source=list", &jobs)
	if len(jobs.Jobs) != 1 {
		t.Errorf("%d list jobs after a dry run, a send and refused sends; want 1", len(jobs.Jobs))
	}
}

// A partner key sends only to its own lists: another partner's list of
// the same name is not found, naming another partner is refused, and the
// other partner's list job is not found.
func TestListSendIsolatesPartners(t *testing.T) {
	f := newListSendFixture(t)
	f.put(t, store.ContactInput{Phone: "+351912000001", Ref: "c-1", Attributes: map[string]any{"first_name": "Ana", "city": "Lisbon"}})
	res := f.send(t, acmeAPIKey, "vip", `{"template": "promo"}`)
	if res.Status != http.StatusAccepted || num(res.Body["queued"]) != 1 {
		t.Fatalf("acme's send: %d %s", res.Status, res.raw)
	}
	jobID := num(res.Body["job_id"])

	// beta's own list "vip" is empty, and beta has no template promo.
	if r := f.send(t, betaAPIKey, "vip", `{"template": "promo", "dry_run": true}`); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("beta's send to its own vip with acme's template: %d %s, want 422 (no such template)", r.Status, r.raw)
	}
	if r := f.send(t, betaAPIKey, "vip", `{"template": "promo", "partner": "acme", "dry_run": true}`); r.Status != http.StatusForbidden {
		t.Errorf("beta naming acme: %d %s, want 403", r.Status, r.raw)
	}
	if r := f.send(t, acmeAPIKey, "nope", `{"template": "promo", "dry_run": true}`); r.Status != http.StatusNotFound {
		t.Errorf("unknown list: %d %s, want 404", r.Status, r.raw)
	}
	// A list only beta has is not found for acme.
	if _, err := f.st.EnsureList(context.Background(), "beta", "beta-only"); err != nil {
		t.Fatal(err)
	}
	if r := f.send(t, acmeAPIKey, "beta-only", `{"template": "promo", "dry_run": true}`); r.Status != http.StatusNotFound {
		t.Errorf("acme sending to beta's list: %d %s, want 404", r.Status, r.raw)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/jobs/%d", f.d.Addrs.Admin, jobID), nil)
	req.Header.Set("Authorization", "Bearer "+betaAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("beta reading acme's list job: %d, want 404", resp.StatusCode)
	}
	// An admin sends as a named partner.
	if r := f.send(t, testAdminToken, "vip", `{"partner": "acme", "template": "promo", "dry_run": true}`); r.Status != http.StatusOK || num(r.Body["matched"]) != 1 {
		t.Errorf("admin dry run as acme: %d %s", r.Status, r.raw)
	}
}

// A list send dropped as sends/<name>.toml over the real SFTP server is
// made like an API send: its counts land in reports/<name>.toml.result.csv,
// the contacts that cannot be messaged in .errors.csv, and the messages go
// out through the outbox. A bad file is rejected with every problem at its
// line and column in the file.
func TestListSendDroppedOverSFTP(t *testing.T) {
	f := newListSendFixture(t)
	f.put(t, store.ContactInput{Phone: "+351912000001", Ref: "c-ana", Attributes: map[string]any{"first_name": "Ana", "city": "Lisbon", "orders": int64(5)}})
	f.put(t, store.ContactInput{Phone: "+351912000002", Ref: "c-rui", Attributes: map[string]any{"first_name": "Rui", "city": "Porto", "orders": int64(5)}})
	f.put(t, store.ContactInput{Phone: "+351912000003", Ref: "c-eva", Attributes: map[string]any{"first_name": "Eva", "city": "Lisbon"}})
	f.put(t, store.ContactInput{Phone: "+351912000004", Ref: "c-anon", Attributes: map[string]any{"city": "Lisbon", "orders": int64(3)}})
	sc := sftpClient(t, f.d)
	reports := filepath.Join(f.d.Home("acme"), "reports")

	sftpPut(t, sc, "/sends/spring.toml", "# the spring campaign\nlist = \"vip\"\ntemplate = \"promo\"\nsegment = '''\ncity == \"Lisbon\"\n  && orders > 2'''\n")
	var result string
	waitFor(t, 15*time.Second, "reports/spring.toml.result.csv", func() bool {
		b, err := os.ReadFile(filepath.Join(reports, "spring.toml.result.csv"))
		result = string(b)
		return err == nil
	})
	rows := readCSV(t, filepath.Join(reports, "spring.toml.result.csv"))
	if len(rows) != 2 || strings.Join(rows[0], ",") != "job,list,considered,matched,skipped_by_error,rejected,queued,first_skip_error" {
		t.Fatalf("result report:\n%s", result)
	}
	if got := strings.Join(rows[1][1:7], ","); got != "vip,4,2,1,1,1" || rows[1][0] == "0" || !strings.Contains(rows[1][7], "invalid operation") {
		t.Fatalf("result report:\n%s\nwant list vip, 4 considered, 2 matched, 1 skipped by error, 1 rejected, 1 queued, a job and the skip's error", result)
	}
	errRows := readCSV(t, filepath.Join(reports, "spring.toml.errors.csv"))
	if len(errRows) != 2 || errRows[1][1] != "first_name" || !strings.HasPrefix(errRows[1][3], fmt.Sprintf("contact %d: ", f.byRef["c-anon"])) {
		t.Errorf("errors report = %v, want c-anon's missing first_name", errRows)
	}
	waitFor(t, 15*time.Second, "the dropped send's message in the outbox", func() bool { return len(f.d.OutboxLines(t, "sms")) == 1 })
	if m := f.d.OutboxLines(t, "sms")[0]; m["to"] != "+351912000001" || !strings.Contains(m["body"].(string), "Olá Ana, Lisbon") {
		t.Errorf("outbox message = %v", m)
	}
	var file struct{ Files []apiFile }
	f.d.API(t, "GET", "/api/v1/files?partner=acme", &file)
	var spring *apiFile
	for i := range file.Files {
		if file.Files[i].Name == "sends/spring.toml" {
			spring = &file.Files[i]
		}
	}
	if spring == nil || spring.Status != "queued" || spring.JobID != int64(mustAtoi(t, rows[1][0])) {
		t.Errorf("files = %+v, want sends/spring.toml queued with the job", file.Files)
	}

	// Line 2: an unknown key; line 5: the segment's unknown function, on
	// the expression's second line (column 6 of the file).
	sftpPut(t, sc, "/sends/bad.toml", "list = \"vip\"\nchannel = \"sms\"\ntemplate = \"promo\"\nsegment = \"\"\"\ncity == \"Lisbon\"\n  && launch(1)\"\"\"\n")
	waitFor(t, 15*time.Second, "reports/bad.toml.errors.csv", func() bool {
		_, err := os.Stat(filepath.Join(reports, "bad.toml.errors.csv"))
		return err == nil
	})
	bad := readCSV(t, filepath.Join(reports, "bad.toml.errors.csv"))
	if len(bad) != 2 || strings.Join(bad[1][:3], ",") != "2,1,channel" {
		t.Fatalf("bad.toml errors = %v, want the unknown key channel at line 2, column 1", bad)
	}
	sftpPut(t, sc, "/sends/bad.toml", "list = \"vip\"\ntemplate = \"promo\"\nsegment = \"\"\"\ncity == \"Lisbon\"\n  && launch(1)\"\"\"\n")
	waitFor(t, 15*time.Second, "the second bad.toml's report", func() bool {
		bad = readCSV(t, filepath.Join(reports, "bad.toml.errors.csv"))
		return len(bad) == 2 && bad[1][0] != "2"
	})
	if strings.Join(bad[1][:2], ",") != "5,6" || !strings.Contains(bad[1][3], "unknown function launch()") {
		t.Errorf("bad segment errors = %v, want line 5, column 6, the unknown function", bad)
	}
	if _, err := os.Stat(filepath.Join(reports, "bad.toml.result.csv")); err == nil {
		t.Error("a rejected sends file has a result report")
	}
	var jobs struct{ Jobs []struct{ ID int } }
	f.d.API(t, "GET", "/api/v1/jobs?source=list", &jobs)
	if len(jobs.Jobs) != 1 {
		t.Errorf("%d list jobs, want the good file's only", len(jobs.Jobs))
	}
}

func mustAtoi(t *testing.T, s string) float64 {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return float64(n)
}
