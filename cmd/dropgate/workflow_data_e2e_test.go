package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store/storetest"
	"golang.org/x/crypto/bcrypt"
)

// A workflow that declares its data refuses starting events without it,
// by API and by file, and leaves other events alone.
func TestWorkflowDataIsRequiredOfStartingEvents(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	storetest.Configure(t, cfg)
	cfg.Workflows = []config.Workflow{{Name: "cart", Partner: "acme", On: "cart_abandoned", ExitOn: []string{"order_placed"},
		Data: []string{"name", "total"}, Steps: []config.WorkflowStep{{Send: &config.WorkflowSend{Template: "reminder"}}}}}
	d := startDaemon(t, cfg)

	post := func(body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+d.Addrs.Admin.String()+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(`{"partner": "acme", "event": "cart_abandoned", "email": "ana@example.com", "key": "c1", "data": {"total": 30}}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"events[0].data.name"`) || !strings.Contains(body, "workflow cart needs the data field") {
		t.Fatalf("event without name: %d %s; want 422 naming events[0].data.name", code, body)
	}
	if code, body := post(`{"partner": "acme", "event": "order_placed", "email": "ana@example.com", "key": "c1"}`); code != http.StatusAccepted {
		t.Fatalf("an event that starts nothing needs no data: %d %s", code, body)
	}
	if code, body := post(`{"partner": "acme", "event": "cart_abandoned", "email": "ana@example.com", "key": "c1", "data": {"name": "Ana", "total": 30}}`); code != http.StatusAccepted {
		t.Fatalf("a complete event: %d %s", code, body)
	}

	c := ftpLogin(t, d)
	if err := c.Stor("events/partial.csv", strings.NewReader("event,email,key,name,total\ncart_abandoned,bob@example.com,c2,Bob,40\ncart_abandoned,cid@example.com,c3,,50\n")); err != nil {
		t.Fatal(err)
	}
	errs := readFTPReport(t, d, "partial.csv.errors.csv")
	if len(errs) != 2 || errs[1][0] != "3" || errs[1][1] != "name" || !strings.Contains(errs[1][3], "needs the data field \"name\"") {
		t.Fatalf("errors report %v; want line 3, column name", errs)
	}
}

// check-config reads the stored templates (read-only, beside a running
// daemon) and refuses a send step whose template reads what the declared
// data does not give.
func TestCheckConfigChecksWorkflowTemplatesAgainstTheDatabase(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	storetest.Configure(t, cfg)
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	conf := func(data string) string {
		path := filepath.Join(t.TempDir(), "dropgate.toml")
		src := "data_dir = " + quoteTOML(dir) + "\n" + storetest.TOML(t, dir) + `
[admin]
listen = "127.0.0.1:0"

[[partner]]
name = "acme"
password_hash = ` + quoteTOML(string(hash)) + `
channels = ["email", "sms"]

[[workflow]]
name = "cart"
partner = "acme"
on = "cart_abandoned"
` + data + `

[[workflow.steps]]
send = { template = "reminder", channel = "email" }
`
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// No database yet: a note, not an error.
	out, stderr, err := runCLI(t, "", "check-config", "--config", conf(`data = ["name"]`))
	if err != nil || !strings.Contains(out, "there is no database yet") || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("before the first start: err=%v out=%q stderr=%s", err, out, stderr)
	}

	d := startDaemon(t, cfg)
	writeFile(t, filepath.Join(d.Home("acme"), "templates", "reminder.tmpl"),
		"channel: email\nsubject: Your cart\n---\nHi {{.name}}, use {{.coupon}} for cart {{.key}}.\n")
	d.waitTemplates(t, 1)

	_, stderr, err = runCLI(t, "", "check-config", "--config", conf(`data = ["name"]`))
	if err == nil || !strings.Contains(stderr, "workflow[0].steps[0].send.template") || !strings.Contains(stderr, "{{.coupon}}") {
		t.Fatalf("coupon undeclared: err=%v stderr=%s", err, stderr)
	}
	out, stderr, err = runCLI(t, "", "check-config", "--config", conf(`data = ["name", "coupon"]`))
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("coupon declared: err=%v out=%q stderr=%s", err, out, stderr)
	}
	out, _, err = runCLI(t, "", "check-config", "--config", conf(""))
	if err != nil || !strings.Contains(out, "reads name, coupon from the event's data") {
		t.Fatalf("no data declared: err=%v out=%q", err, out)
	}
}

func quoteTOML(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
