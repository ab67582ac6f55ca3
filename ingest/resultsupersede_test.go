package ingest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestOlderJobDoesNotOverwriteANewerUploadsResult: orders.csv uploaded,
// then a corrected orders.csv; the newer job ends first. When the older
// job ends, reports/orders.csv.result.csv stays the newer upload's. The
// same bytes uploaded again (a refused duplicate) do not hide the first
// upload's result.
func TestOlderJobDoesNotOverwriteANewerUploadsResult(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/orders.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	older := e.lastFile("acme").JobID
	e.ingest("acme", "inbox/welcome/orders.csv", []byte("phone,first_name,order_id\n912345679,Bob,2\n"))
	newer := e.lastFile("acme").JobID
	if older == 0 || newer == 0 || older == newer {
		t.Fatalf("jobs %d, %d", older, newer)
	}

	if _, err := e.st.CancelJob(ctx, newer); err != nil {
		t.Fatal(err)
	}
	e.in.writeResultReports(ctx, map[int64]time.Time{})
	if r := e.readReport("acme", "orders.csv.result.csv"); !strings.Contains(r, "+351912345679") {
		t.Fatalf("newer job's report:\n%s", r)
	}
	if _, err := e.st.CancelJob(ctx, older); err != nil {
		t.Fatal(err)
	}
	e.in.writeResultReports(ctx, map[int64]time.Time{})
	if r := e.readReport("acme", "orders.csv.result.csv"); !strings.Contains(r, "+351912345679") || strings.Contains(r, "+351912345678") {
		t.Errorf("the older job overwrote the newer upload's report:\n%s", r)
	}

	// A duplicate of the first upload of dup.csv does not hide its result.
	e.ingest("acme", "inbox/welcome/dup.csv", []byte("phone,first_name,order_id\n912345670,Cy,3\n"))
	first := e.lastFile("acme").JobID
	e.ingest("acme", "inbox/welcome/dup.csv", []byte("phone,first_name,order_id\n912345670,Cy,3\n"))
	if _, err := e.st.CancelJob(ctx, first); err != nil {
		t.Fatal(err)
	}
	e.in.writeResultReports(ctx, map[int64]time.Time{})
	if r := e.readReport("acme", "dup.csv.result.csv"); !strings.Contains(r, "+351912345670") {
		t.Errorf("the first upload's result is missing after a duplicate:\n%s", r)
	}
}
