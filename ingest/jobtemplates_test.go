package ingest

import (
	"context"
	"slices"
	"testing"

	"github.com/dropgate/dropgate/store"
)

// A file job records the template versions its rows were rendered from:
// the folder's latest version when it was read, and each template a
// template column names.
func TestFileJobRecordsItsTemplateVersions(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.template("acme", "welcome", welcomeSMS+"Obrigado.\n") // version 2
	e.template("acme", "shipped", shippedEmail)
	ctx := context.Background()

	e.ingest("acme", "inbox/welcome/w.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))
	j, err := e.st.Job(ctx, e.lastFile("acme").JobID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.TemplateRef{{Name: "welcome", Version: 2}}; !slices.Equal(j.Templates, want) {
		t.Errorf("folder job templates = %v, want %v", j.Templates, want)
	}

	e.ingest("acme", "inbox/mixed.csv", []byte("template,phone,email,first_name,order_id\n"+
		"welcome,912345678,,Ana,A-1\nshipped,,ana@example.com,Ana,A-2\n"))
	f := e.lastFile("acme")
	if f.Status != store.FileQueued {
		t.Fatalf("file = %+v, want queued", f)
	}
	if j, err = e.st.Job(ctx, f.JobID); err != nil {
		t.Fatal(err)
	}
	if want := []store.TemplateRef{{Name: "shipped", Version: 1}, {Name: "welcome", Version: 2}}; !slices.Equal(j.Templates, want) {
		t.Errorf("template-column job templates = %v, want %v", j.Templates, want)
	}
}
