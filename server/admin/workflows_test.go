package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// fakeWorkflows is the engine as the API sees it: every partner has one
// workflow, "cart", started by cart_abandoned and left by order_placed,
// waiting an hour. It writes through the real store.
type fakeWorkflows struct{ st *store.Store }

var _ Workflows = (*fakeWorkflows)(nil)

func (f *fakeWorkflows) Accept(ctx context.Context, events []store.Event) ([]store.EventResult, error) {
	now := time.Now()
	ws := make([]store.EventWrite, len(events))
	for i, e := range events {
		ws[i] = store.EventWrite{Event: e}
		switch e.Name {
		case "cart_abandoned":
			ws[i].Starts = []store.RunStart{{Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}
		case "order_placed":
			ws[i].Exits = []string{"cart"}
		}
	}
	return f.st.AcceptEvents(ctx, ws, now)
}

func (f *fakeWorkflows) Has(partner, name string) bool { return name == "cart" }

func (f *fakeWorkflows) Workflows(partner string) []config.Workflow {
	var out []config.Workflow
	for _, p := range []string{"acme", "beta"} {
		if partner == "" || partner == p {
			out = append(out, config.Workflow{Name: "cart", Partner: p, On: "cart_abandoned", ExitOn: []string{"order_placed"},
				Steps: []config.WorkflowStep{{Delay: "1h"}, {Send: &config.WorkflowSend{Template: "reminder"}}}})
		}
	}
	return out
}

// fakeCheckEvents accepts every event that names one; the real checks
// are ingest's (and tested there and end to end).
func fakeCheckEvents(partner string, in []ingest.EventInput) ([]store.Event, []ingest.Problem, error) {
	var out []store.Event
	var problems []ingest.Problem
	for i, x := range in {
		if x.Event == "" {
			problems = append(problems, ingest.Problem{Field: "events[" + strconv.Itoa(i) + "].event", Message: "empty"})
		}
		out = append(out, store.Event{Partner: partner, EventID: x.ID, Name: x.Event, Email: x.Email, Key: x.Key, Data: x.Data, Source: store.EventFromAPI})
	}
	return out, problems, nil
}

const betaToken = "password"

func (f *fixture) send(t *testing.T, method, path, token, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func runIDs(t *testing.T, body map[string]any) []int64 {
	t.Helper()
	var ids []int64
	events, ok := body["events"].([]any)
	if !ok {
		t.Fatalf("no events in %v", body)
	}
	for _, e := range events {
		started, _ := e.(map[string]any)["runs_started"].([]any)
		for _, id := range started {
			ids = append(ids, int64(id.(float64)))
		}
	}
	return ids
}

func TestEventsAreIdempotentByKeyAndByID(t *testing.T) {
	f := newFixture(t)
	body := `{"event": "cart_abandoned", "email": "ana@example.com", "key": "c1"}`
	code, out := f.send(t, "POST", "/api/v1/events", partnerToken, body, "Idempotency-Key", "k-1")
	if code != 202 || len(runIDs(t, out)) != 1 {
		t.Fatalf("%d %v", code, out)
	}
	if code, out = f.send(t, "POST", "/api/v1/events", partnerToken, body, "Idempotency-Key", "k-1"); code != 200 || out["duplicates"].(float64) != 1 {
		t.Fatalf("repeat: %d %v", code, out)
	}
	batch := `{"events": [{"id": "e1", "event": "x", "email": "b@example.com"}, {"id": "e1", "event": "x", "email": "b@example.com"}]}`
	if code, out = f.send(t, "POST", "/api/v1/events", partnerToken, batch); code != 202 || out["accepted"].(float64) != 1 || out["duplicates"].(float64) != 1 {
		t.Fatalf("batch: %d %v", code, out)
	}
}

func TestEventsRefuseABadBatchByIndex(t *testing.T) {
	f := newFixture(t)
	code, out := f.send(t, "POST", "/api/v1/events", partnerToken, `{"events": [{"event": "x", "email": "a@example.com"}, {"email": "a@example.com", "data": {"n": [1]}}]}`)
	if code != 422 {
		t.Fatalf("%d %v", code, out)
	}
	details := out["error"].(map[string]any)["details"].([]any)
	fields := map[string]bool{}
	for _, d := range details {
		fields[d.(map[string]any)["field"].(string)] = true
	}
	if !fields["events[1].event"] || !fields["events[1].data.n"] {
		t.Fatalf("details %v", details)
	}
	if c, _ := f.store.RunCounts(context.Background(), ""); len(c) != 0 {
		t.Fatalf("runs stored from a refused batch: %v", c)
	}
}

// A partner key sees and cancels only its own workflows' runs: another
// partner's run is not found on every route.
func TestWorkflowRoutesIsolatePartners(t *testing.T) {
	f := newFixture(t)
	_, out := f.send(t, "POST", "/api/v1/events", partnerToken, `{"event": "cart_abandoned", "email": "ana@example.com", "key": "c1"}`)
	acmeRun := runIDs(t, out)[0]
	_, out = f.send(t, "POST", "/api/v1/events", betaToken, `{"event": "cart_abandoned", "email": "bob@example.com", "key": "c1"}`)
	betaRun := runIDs(t, out)[0]
	id := func(n int64) string { return strconv.FormatInt(n, 10) }

	if code, _ := f.send(t, "POST", "/api/v1/events", partnerToken, `{"partner": "beta", "event": "cart_abandoned", "email": "x@example.com"}`); code != 403 {
		t.Fatalf("events as another partner: %d", code)
	}

	if code, body := f.do(t, "GET", "/api/v1/workflows", partnerToken); code != 200 || len(body["workflows"].([]any)) != 1 {
		t.Fatalf("workflows: %d %v", code, body)
	}
	if code, _ := f.do(t, "GET", "/api/v1/workflows?partner=beta", partnerToken); code != 403 {
		t.Fatalf("another partner's workflows: %d", code)
	}
	if code, body := f.do(t, "GET", "/api/v1/workflows/cart/runs", partnerToken); code != 200 || len(body["runs"].([]any)) != 1 {
		t.Fatalf("runs: %d %v", code, body)
	}
	if code, _ := f.do(t, "GET", "/api/v1/workflows/cart/runs?partner=beta", partnerToken); code != 403 {
		t.Fatalf("another partner's runs: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/v1/runs/"+id(betaRun), partnerToken); code != 404 {
		t.Fatalf("another partner's run: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/v1/runs/"+id(acmeRun), partnerToken); code != 200 {
		t.Fatalf("own run: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/workflows/cart/runs/"+id(betaRun), partnerToken); code != 404 {
		t.Fatalf("cancelling another partner's run: %d", code)
	}
	if code, body := f.do(t, "POST", "/api/v1/workflows/cart/cancel?key=c1", partnerToken); code != 200 || body["cancelled"].(float64) != 1 {
		t.Fatalf("cancel by key: %d %v", code, body)
	}
	if r, _ := f.store.RunOf(context.Background(), "", betaRun); r.Status != store.RunWaiting {
		t.Fatalf("beta's run is %s after acme cancelled its key", r.Status)
	}
	// An exit event of one partner leaves the other's runs alone.
	f.send(t, "POST", "/api/v1/events", partnerToken, `{"event": "order_placed", "email": "bob@example.com", "key": "c1"}`)
	if r, _ := f.store.RunOf(context.Background(), "", betaRun); r.Status != store.RunWaiting {
		t.Fatalf("beta's run is %s after acme's exit event", r.Status)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/workflows/cart/runs/"+id(betaRun), betaToken); code != 200 {
		t.Fatalf("beta cancelling its own run: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/workflows/cart/runs/"+id(betaRun), betaToken); code != 409 {
		t.Fatalf("cancelling an ended run: %d", code)
	}
	if code, body := f.do(t, "GET", "/api/v1/runs/"+id(betaRun), adminToken); code != 200 || body["run"].(map[string]any)["status"] != "cancelled" {
		t.Fatalf("admin reading beta's run: %d %v", code, body)
	}
}

func TestMetricsCountWorkflowRunsByStatus(t *testing.T) {
	f := newFixture(t)
	f.send(t, "POST", "/api/v1/events", partnerToken, `{"event": "cart_abandoned", "email": "ana@example.com", "key": "c1"}`)
	f.send(t, "POST", "/api/v1/events", partnerToken, `{"event": "cart_abandoned", "email": "bob@example.com", "key": "c2"}`)
	f.send(t, "POST", "/api/v1/events", partnerToken, `{"event": "order_placed", "email": "bob@example.com", "key": "c2"}`)
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`dropgate_workflow_runs{partner="acme",status="waiting",workflow="cart"} 1`,
		`dropgate_workflow_runs{partner="acme",status="cancelled",workflow="cart"} 1`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics without %s", want)
		}
	}
}
