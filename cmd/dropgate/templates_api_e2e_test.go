package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// putTemplate PUTs a template file to the API as the partner acme.
func (d *testDaemon) putTemplate(t *testing.T, name, src string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("PUT", "http://"+d.Addrs.Admin.String()+"/api/v1/templates/"+name, strings.NewReader(src))
	req.Header.Set("Authorization", "Bearer "+acmeAPIKey)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("PUT %s: %v in %s", name, err, raw)
	}
	return resp.StatusCode, out
}

// A template PUT through the API is checked like a dropped one (a bad one
// is 422 with line and column), becomes a version readable through the
// API, is used by the next file, and is what the partner's templates/
// file holds, so a restart does not bring the dropped version back.
func TestTemplatesOverTheAPI(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].APIKey = acmeAPIKey
	d := startDaemon(t, cfg)

	code, body := d.putTemplate(t, "shipped", "channel: email\nsubject: Hi\n---\nHello {{.first_name\n")
	errObj, _ := body["error"].(map[string]any)
	details, _ := errObj["details"].(map[string]any)
	if code != http.StatusUnprocessableEntity || details["line"] != float64(4) || details["column"] == nil {
		t.Fatalf("bad template: %d %v", code, body)
	}
	// Version 1 is dropped as a file, as a partner would.
	renameInto(t, filepath.Join(d.Home("acme"), "templates", "shipped.tmpl"), shippedTemplate)
	d.waitTemplates(t, 1)
	if code, body = d.putTemplate(t, "shipped", shippedTemplate); code != http.StatusOK || body["version"] != float64(1) {
		t.Fatalf("same bytes again: %d %v, want 200 and version 1", code, body)
	}
	v2 := strings.Replace(shippedTemplate, "on its way", "coming", 1)
	if code, body = d.putTemplate(t, "shipped", v2); code != http.StatusCreated || body["version"] != float64(2) {
		t.Fatalf("second version: %d %v", code, body)
	}
	var versions struct {
		Versions []struct{ Version int }
	}
	if code := d.API(t, "GET", "/api/v1/templates/shipped?partner=acme", &versions); code != 200 || len(versions.Versions) != 2 || versions.Versions[0].Version != 2 {
		t.Fatalf("versions: %d %+v", code, versions)
	}
	var one struct {
		Version int
		Source  string
	}
	if code := d.API(t, "GET", "/api/v1/templates/shipped/versions/1?partner=acme", &one); code != 200 || one.Source != shippedTemplate {
		t.Fatalf("version 1: %d %+v", code, one)
	}
	if code := d.API(t, "GET", "/api/v1/templates/shipped/versions/9?partner=acme", nil); code != http.StatusNotFound {
		t.Fatalf("missing version: %d", code)
	}
	if got, _ := os.ReadFile(filepath.Join(d.Home("acme"), "templates", "shipped.tmpl")); string(got) != v2 {
		t.Fatalf("templates/shipped.tmpl = %q, want the latest version", got)
	}

	renameInto(t, filepath.Join(d.Home("acme"), "inbox", "orders.csv"), "email,first_name,order_id,template\r\nana@example.com,Ana,A-1,shipped\r\n")
	waitFor(t, 20*time.Second, "the file's message sent with version 2", func() bool {
		for _, m := range d.OutboxLines(t, "email") {
			if strings.Contains(m["body"].(string), "coming") {
				return true
			}
		}
		return false
	})

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, cfg)
	d.waitTemplates(t, 1)
	if code := d.API(t, "GET", "/api/v1/templates/shipped?partner=acme", &versions); code != 200 || len(versions.Versions) != 2 {
		t.Fatalf("after a restart: %d %+v, want still 2 versions", code, versions)
	}
}
