package ingest

import (
	"context"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/store"
)

// TestRejectedTemplateReachesTheAdminOnce: a bad template is a rejected
// file in the store (what GET /api/v1/files?status=rejected shows) with
// its line and column, recorded once however often the same bytes are
// read again (every start rescans templates/).
func TestRejectedTemplateReachesTheAdminOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	bad := "channel: sms\n---\nHello\nOla {{.first_name | env \"HOME\"}}\n"
	e.template("acme", "welcome", bad)
	e.template("acme", "welcome", bad) // a restart reads it again

	files, err := e.st.ListFiles(context.Background(), store.FileFilter{Partner: "acme", Status: store.FileRejected})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Name != "templates/welcome.tmpl" || !strings.Contains(files[0].Error, `function "env" not defined`) {
		t.Fatalf("rejected files = %+v, want templates/welcome.tmpl once", files)
	}
	errs, err := e.st.FileErrors(context.Background(), files[0].ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Line != 4 || errs[0].Column != "5" {
		t.Errorf("errors = %+v, want line 4, column 5", errs)
	}

	// Another bad version is another rejection.
	e.template("acme", "welcome", "channel: fax\n---\nHi\n")
	files, _ = e.st.ListFiles(context.Background(), store.FileFilter{Partner: "acme", Status: store.FileRejected})
	if len(files) != 2 {
		t.Errorf("after a second bad version: %d rejected files, want 2", len(files))
	}
}

// TestFileWithoutTmplExtensionInTemplatesIsReported: welcome.tmpl.txt (an
// editor or a hidden extension at work) is not silently ignored.
func TestFileWithoutTmplExtensionInTemplatesIsReported(t *testing.T) {
	e := newTestEnv(t, nil)
	e.ingest("acme", "templates/welcome.tmpl.txt", []byte(welcomeSMS))
	report := e.readReport("acme", "welcome.tmpl.txt.errors.txt")
	if !strings.HasPrefix(report, "templates/welcome.tmpl.txt, line 1, column 1: templates/ takes template files named <name>.tmpl") {
		t.Errorf("report:\n%s", report)
	}
	if _, err := e.st.LatestTemplate(context.Background(), "acme", "welcome.tmpl"); err == nil {
		t.Error("a .txt file was stored as a template")
	}
	if f := e.lastFile("acme"); f.Status != store.FileRejected || f.Name != "templates/welcome.tmpl.txt" {
		t.Errorf("last file = %+v, want the .txt rejected", f)
	}
}
