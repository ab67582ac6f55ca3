package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
)

// TestAPISendOfATemplatePastItsBoundsFailsAndStoresNothing: templates that
// pass the upload (harmless with empty values) but loop too long, write
// past the channel's limit or build a huge text in a variable with the
// request's values are refused by POST /api/v1/messages with the reason,
// and nothing is stored.
func TestAPISendOfATemplatePastItsBoundsFailsAndStoresNothing(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].APIKey = acmeAPIKey
	cfg.Ingest.RenderTimeout = config.Duration(time.Hour) // the step bound decides, however busy the machine
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "loops.tmpl"), "channel: sms\n---\n{{range (len .pad)}}{{range (len $.pad)}}{{end}}{{end}}Hi\n")
	renameInto(t, filepath.Join(home, "templates", "wide.tmpl"), "channel: sms\n---\n{{range (len .pad)}}{{$.pad}}{{end}}\n")
	renameInto(t, filepath.Join(home, "templates", "chain.tmpl"), "channel: email\nsubject: Hi\n---\n{{$x := replace \"p\" \"pppppppppp\" .pad}}"+
		strings.Repeat(`{{$x = replace "p" "pppppppppp" $x}}`, 7)+"{{$x}}\n")
	d.waitTemplates(t, 3)

	pad := strings.Repeat("p", 1000)
	for _, c := range []struct{ template, to, want string }{
		{"loops", "912345678", `the template "loops" cannot be filled in: the template does too much work: one message took more than 100000 steps`},
		{"wide", "912345678", `the template "wide" cannot be filled in: the rendered body is larger than 4 KiB, the limit of channel "sms"`},
		{"chain", "ana@example.com", `the template "chain" cannot be filled in: replace would make a text of 10000000 bytes, larger than 1 MiB, the limit of channel "email"`},
	} {
		recipients := make([]string, 50)
		for i := range recipients {
			recipients[i] = fmt.Sprintf(`{"to": %q, "vars": {"pad": %q}}`, c.to, pad)
		}
		res := d.postJSON(t, acmeAPIKey, "", "/api/v1/messages", `{"template": "`+c.template+`", "recipients": [`+strings.Join(recipients, ",")+`]}`)
		e, _ := res.Body["error"].(map[string]any)
		if msg, _ := e["message"].(string); res.Status != http.StatusUnprocessableEntity || !strings.Contains(msg, c.want) {
			t.Errorf("%s: status %d: %s\nwant 422 with %q", c.template, res.Status, res.raw, c.want)
		}
	}
	var jobs struct{ Jobs []struct{ ID int64 } }
	d.API(t, "GET", "/api/v1/jobs", &jobs)
	if len(jobs.Jobs) != 0 {
		t.Errorf("refused sends created %d jobs", len(jobs.Jobs))
	}
}

// TestStopDuringTheIngestOfASlowTemplateReturnsPromptly: the daemon's stop
// (what SIGTERM does) while a file whose every row renders a slow but legal
// template is being read returns within a generous deadline, leaving the
// file for the next start.
func TestStopDuringTheIngestOfASlowTemplateReturnsPromptly(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Ingest.RenderTimeout = config.Duration(time.Hour)
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "slow.tmpl"), "channel: sms\n---\n{{range (len .pad)}}{{range 90}}{{end}}{{end}}Hi\n")
	d.waitTemplates(t, 1)
	var b strings.Builder
	b.WriteString("phone,pad\n")
	pad := strings.Repeat("p", 1000)
	for i := range 20_000 {
		fmt.Fprintf(&b, "91%07d,%s\n", i, pad)
	}
	if err := os.MkdirAll(filepath.Join(home, "inbox", "slow"), 0o755); err != nil {
		t.Fatal(err)
	}
	renameInto(t, filepath.Join(home, "inbox", "slow", "big.csv"), b.String())
	waitFor(t, 30*time.Second, "the ingest to start", func() bool {
		var jobs struct{ Jobs []struct{ ID int64 } }
		d.API(t, "GET", "/api/v1/jobs", &jobs)
		return len(jobs.Jobs) > 0
	})
	if err := d.Stop(); err != nil { // waits at most 30s
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "inbox", "slow", "big.csv")); err != nil {
		t.Errorf("the file is not in the inbox for the next start: %v", err)
	}
}
