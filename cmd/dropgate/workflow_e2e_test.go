package main

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
)

// startWorkflowDaemon runs the daemon with the cart workflow of the README:
// cart_abandoned starts a run that sends the reminder template at once,
// order_placed of the same cart cancels it.
func startWorkflowDaemon(t *testing.T, steps []config.WorkflowStep) *testDaemon {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Workflows = []config.Workflow{{Name: "cart", Partner: "acme", On: "cart_abandoned", ExitOn: []string{"order_placed"},
		When: "total >= 20", Steps: steps}}
	d := startDaemon(t, cfg)
	writeFile(t, filepath.Join(d.Home("acme"), "templates", "reminder.tmpl"),
		"channel: email\nsubject: Your cart\n---\nHi {{.name}}, your cart {{.key}} of {{.total}} EUR is waiting.\n")
	d.waitTemplates(t, 1)
	return d
}

// readReport fetches reports/<name> over FTP as CSV rows, waiting for it.
func readFTPReport(t *testing.T, d *testDaemon, name string) [][]string {
	t.Helper()
	c := ftpLogin(t, d)
	var rows [][]string
	waitFor(t, 20*time.Second, "reports/"+name, func() bool {
		r, err := c.Retr("reports/" + name)
		if err != nil {
			return false
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		rows, err = csv.NewReader(bytes.NewReader(b)).ReadAll()
		return err == nil
	})
	return rows
}

func TestEventsDroppedOverFTPStartRunsReportBadRowsAndIgnoreRepeats(t *testing.T) {
	d := startWorkflowDaemon(t, []config.WorkflowStep{{Send: &config.WorkflowSend{Template: "reminder"}}})
	c := ftpLogin(t, d)

	// A bad row (line 3, column email) rejects the whole file.
	bad := "id,event,email,key,name,total\ne1,cart_abandoned,ana@example.com,c1,Ana,30\ne2,cart_abandoned,not-an-address,c2,Bob,40\n"
	if err := c.Stor("events/bad.csv", strings.NewReader(bad)); err != nil {
		t.Fatal(err)
	}
	errs := readFTPReport(t, d, "bad.csv.errors.csv")
	found := false
	for _, row := range errs[1:] {
		if row[0] == "3" && row[1] == "email" {
			found = true
		}
	}
	if !found {
		t.Fatalf("errors report without line 3, column email: %v", errs)
	}

	// A good file starts runs; total below the workflow's when starts none.
	good := "id,event,email,key,name,total\ne1,cart_abandoned,ana@example.com,c1,Ana,30\ne3,cart_abandoned,cid@example.com,c3,Cid,5\n"
	if err := c.Stor("events/good.csv", strings.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	res := readFTPReport(t, d, "good.csv.result.csv")
	if len(res) != 2 || strings.Join(res[1], ",") != "2,2,0,1,0,0" {
		t.Fatalf("result report %v, want 2 rows, 2 accepted, 1 run", res)
	}
	waitFor(t, 20*time.Second, "the reminder to ana", func() bool { return len(d.OutboxLines(t, "email")) == 1 })
	msg := d.OutboxLines(t, "email")[0]
	if msg["to"] != "ana@example.com" || !strings.Contains(msg["body"].(string), "cart c1 of 30 EUR") {
		t.Fatalf("message %v", msg)
	}

	// The same event id again, in another file: ignored.
	again := "event,id,email,key,name,total\ncart_abandoned,e1,ana@example.com,c1,Ana,30\n"
	if err := c.Stor("events/again.csv", strings.NewReader(again)); err != nil {
		t.Fatal(err)
	}
	res = readFTPReport(t, d, "again.csv.result.csv")
	if strings.Join(res[1], ",") != "1,0,1,0,0,0" {
		t.Fatalf("result report %v, want the repeat ignored", res)
	}
	var wf struct {
		Workflows []struct {
			Runs map[string]int `json:"runs"`
		} `json:"workflows"`
	}
	if code := d.API(t, "GET", "/api/v1/workflows", &wf); code != http.StatusOK || wf.Workflows[0].Runs["done"] != 1 {
		t.Fatalf("workflows: %d %+v", code, wf)
	}
	if n := len(d.OutboxLines(t, "email")); n != 1 {
		t.Fatalf("%d messages after the repeat, want 1", n)
	}

	// A gzipped file is read like a recipient file's .gz.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("id,event,email,key,name,total\ne4,cart_abandoned,dan@example.com,c4,Dan,50\n"))
	zw.Close()
	if err := c.Stor("events/more.csv.gz", &gz); err != nil {
		t.Fatal(err)
	}
	res = readFTPReport(t, d, "more.csv.gz.result.csv")
	if strings.Join(res[1], ",") != "1,1,0,1,0,0" {
		t.Fatalf("result report %v, want 1 event accepted and 1 run", res)
	}
	waitFor(t, 20*time.Second, "the reminder to dan", func() bool { return len(d.OutboxLines(t, "email")) == 2 })
}

func TestEventsByAPIStartAndExitRuns(t *testing.T) {
	d := startWorkflowDaemon(t, []config.WorkflowStep{{Delay: "1h"}, {Send: &config.WorkflowSend{Template: "reminder"}}})
	post := func(body string) map[string]any {
		var out map[string]any
		req, _ := http.NewRequest("POST", "http://"+d.Addrs.Admin.String()+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /api/v1/events: %d %s", resp.StatusCode, b)
		}
		return decodeJSON(t, b, &out)
	}
	post(`{"partner": "acme", "event": "cart_abandoned", "email": "Ana@Example.com", "key": "c1", "data": {"name": "Ana", "total": 30}}`)
	post(`{"partner": "acme", "event": "cart_abandoned", "email": "bob@example.com", "key": "c2", "data": {"name": "Bob", "total": 50}}`)
	out := post(`{"partner": "acme", "event": "order_placed", "email": "ana@example.com", "key": "c1"}`)
	if out["events"].([]any)[0].(map[string]any)["runs_cancelled"].(float64) != 1 {
		t.Fatalf("order_placed: %v", out)
	}
	var runs struct {
		Runs []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
			Email  string `json:"email"`
		} `json:"runs"`
	}
	if code := d.API(t, "GET", "/api/v1/workflows/cart/runs?partner=acme&status=waiting", &runs); code != 200 || len(runs.Runs) != 1 || runs.Runs[0].Email != "bob@example.com" {
		t.Fatalf("waiting runs: %d %+v", code, runs)
	}
	var detail struct {
		Run    struct{ Status string }  `json:"run"`
		Events []struct{ Event string } `json:"events"`
	}
	if code := d.API(t, "GET", "/api/v1/runs/"+itoa64(runs.Runs[0].ID), &detail); code != 200 || detail.Run.Status != "waiting" || len(detail.Events) != 1 {
		t.Fatalf("run: %d %+v", code, detail)
	}
}

func decodeJSON(t *testing.T, b []byte, out *map[string]any) map[string]any {
	t.Helper()
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return *out
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
