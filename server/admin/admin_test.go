package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

const (
	adminToken   = "admin-token-0123456789"
	partnerToken = "acme-api-key-0123456789"
)

type fixture struct {
	srv   *httptest.Server
	store *store.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := storetest.Open(t)
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	cfg.Partners = []config.Partner{
		{Name: "acme", APIKey: partnerToken, Channels: []string{"sms"}},
		// The other partner's key is given as its SHA-256, as a config would.
		{Name: "beta", APIKey: "sha256:" + "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", Channels: []string{"sms"}}, // "password"
	}
	s, err := New(Options{Config: cfg, Store: st, Bans: func() []Ban { return []Ban{{Addr: "192.0.2.1", Failures: 5}} },
		Workflows: &fakeWorkflows{st: st}, CheckEvents: fakeCheckEvents})
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // the bound listener is not used: these tests use httptest
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &fixture{srv: ts, store: st}
}

func (f *fixture) do(t *testing.T, method, path, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode, out
}

func (f *fixture) job(t *testing.T, partner string, n int) store.Job {
	t.Helper()
	msgs := make([]store.Message, n)
	for i := range msgs {
		msgs[i] = store.Message{Channel: "sms", Recipient: "+351912345678", Body: "hi"}
	}
	j, _, err := f.store.CreateJob(context.Background(), store.Job{Partner: partner, Source: store.SourceAPI,
		Templates: []store.TemplateRef{{Name: "otp", Version: 2}}}, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestAPIRequiresBearerToken(t *testing.T) {
	f := newFixture(t)
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		code, body := f.do(t, "GET", "/api/v1/jobs", tok)
		if code != http.StatusUnauthorized || errorCode(body) != "unauthorized" {
			t.Errorf("token %q: %d %v", tok, code, body)
		}
	}
	if code, _ := f.do(t, "GET", "/healthz", ""); code != 200 {
		t.Errorf("healthz without token: %d", code)
	}
	if code, _ := f.do(t, "GET", "/readyz", ""); code != 200 {
		t.Errorf("readyz: %d", code)
	}
}

func TestAPIJobWithCounts(t *testing.T) {
	f := newFixture(t)
	j := f.job(t, "acme", 3)
	code, body := f.do(t, "GET", "/api/v1/jobs/"+itoa(j.ID), adminToken)
	if code != 200 || body["status"] != "queued" || body["counts"].(map[string]any)["queued"] != float64(3) {
		t.Fatalf("%d %v", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/jobs/999", adminToken)
	if code != 404 || errorCode(body) != "not_found" {
		t.Errorf("missing job: %d %v", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/jobs/abc", adminToken)
	if code != 400 || errorCode(body) != "bad_request" {
		t.Errorf("bad id: %d %v", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/jobs/"+itoa(j.ID)+"/messages", adminToken)
	if code != 200 || len(body["messages"].([]any)) != 3 {
		t.Errorf("messages: %d %v", code, body)
	}
}

func TestAPIPartnerKeySeesOnlyItsOwnJobs(t *testing.T) {
	f := newFixture(t)
	mine := f.job(t, "acme", 1)
	theirs := f.job(t, "beta", 1)
	_, body := f.do(t, "GET", "/api/v1/jobs", partnerToken)
	jobs := body["jobs"].([]any)
	if len(jobs) != 1 || jobs[0].(map[string]any)["partner"] != "acme" {
		t.Errorf("partner key listing = %v", jobs)
	}
	if code, _ := f.do(t, "GET", "/api/v1/jobs/"+itoa(theirs.ID), partnerToken); code != 404 {
		t.Errorf("another partner's job: %d, want 404", code)
	}
	if code, _ := f.do(t, "GET", "/api/v1/jobs/"+itoa(mine.ID), partnerToken); code != 200 {
		t.Errorf("own job: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/v1/jobs?partner=beta", partnerToken); code != 403 {
		t.Errorf("filtering another partner: %d, want 403", code)
	}
	// beta's key is configured as sha256:<hex> of "password".
	if code, body := f.do(t, "GET", "/api/v1/jobs", "password"); code != 200 || len(body["jobs"].([]any)) != 1 {
		t.Errorf("sha256 key: %d %v", code, body)
	}
	if code, _ := f.do(t, "GET", "/api/v1/bans", partnerToken); code != 403 {
		t.Errorf("bans with a partner key: %d, want 403", code)
	}
}

func TestAPIListsRejectedFilesWithErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, _ := f.store.CreateFile(ctx, store.File{Partner: "acme", Name: "inbox/bad.csv", SHA256: "x"})
	f.store.RejectFile(ctx, id, "1 bad row", 2, []store.FileError{{Line: 2, Column: "phone", Value: "+351 91", Error: "not a valid phone number"}})
	f.store.CreateFile(ctx, store.File{Partner: "acme", Name: "inbox/other.csv", SHA256: "y"})

	code, body := f.do(t, "GET", "/api/v1/files?status=rejected", adminToken)
	files := body["files"].([]any)
	if code != 200 || len(files) != 1 {
		t.Fatalf("%d %v", code, body)
	}
	file := files[0].(map[string]any)
	errs := file["errors"].([]any)
	if file["name"] != "inbox/bad.csv" || len(errs) != 1 || errs[0].(map[string]any)["column"] != "phone" {
		t.Errorf("file = %v", file)
	}
	if code, body := f.do(t, "GET", "/api/v1/files?status=nonsense", adminToken); code != 400 {
		t.Errorf("bad status filter: %d %v", code, body)
	}
}

func TestAPIJobActions(t *testing.T) {
	f := newFixture(t)
	j := f.job(t, "acme", 2)
	code, body := f.do(t, "POST", "/api/v1/jobs/"+itoa(j.ID)+"/pause", adminToken)
	if code != 200 || body["status"] != "paused" {
		t.Fatalf("pause: %d %v", code, body)
	}
	code, body = f.do(t, "POST", "/api/v1/jobs/"+itoa(j.ID)+"/cancel", adminToken)
	if code != 200 || body["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, body)
	}
	if code, _ := f.do(t, "POST", "/api/v1/jobs/"+itoa(j.ID)+"/explode", adminToken); code != 404 {
		t.Errorf("unknown action: %d", code)
	}
	if code, body := f.do(t, "GET", "/api/v1/nope", adminToken); code != 404 || errorCode(body) != "not_found" {
		t.Errorf("unknown endpoint: %d %v", code, body)
	}
}

func TestAPIBansForAdmin(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "GET", "/api/v1/bans", adminToken)
	if code != 200 || len(body["bans"].([]any)) != 1 {
		t.Errorf("%d %v", code, body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestMetricsExposeStoreCounts(t *testing.T) {
	f := newFixture(t)
	f.job(t, "acme", 2)
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`dropgate_messages{channel="sms",status="queued"} 2`, `dropgate_jobs{status="queued"} 1`, "dropgate_store_up 1", "go_goroutines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
