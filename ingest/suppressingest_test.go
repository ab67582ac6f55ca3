package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/store"
)

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// suppressed reports whether the partner's channel may not message r.
func (e *testEnv) suppressed(partner, channel, r string) bool {
	e.t.Helper()
	yes, err := e.st.IsSuppressed(context.Background(), partner, channel, SuppressionKey(r))
	if err != nil {
		e.t.Fatal(err)
	}
	return yes
}

// suppress/ files are read like recipient files: BOM, sniffed delimiter,
// .gz, the partner's encoding; numbers normalised with the region,
// addresses lower-cased; a per-channel row blocks that channel only; the
// same content again is refused; the original is archived.
func TestSuppressFilesAreReadLikeRecipientFiles(t *testing.T) {
	e := newTestEnv(t, nil)
	e.ingest("acme", "suppress/a.csv", []byte("\xEF\xBB\xBFEmail;Phone;Channel;Reason\nAna@Example.com;;;bounced\n;912 345 678;sms;STOP\n"))
	if f := e.lastFile("acme"); f.Status != store.FileQueued || f.RowsTotal != 2 {
		t.Fatalf("file = %+v, want queued with 2 rows", f)
	}
	if r := e.readReport("acme", "a.csv.result.csv"); !strings.Contains(r, "2,2,0,0") {
		t.Errorf("result report = %q", r)
	}
	if !e.suppressed("acme", "email", "ANA@example.com") || !e.suppressed("acme", "sms", "+351912345678") {
		t.Error("rows not suppressed")
	}
	if e.suppressed("acme", "email", "+351912345678") || e.suppressed("legacy", "email", "ana@example.com") {
		t.Error("a suppression leaked to another channel or partner")
	}

	e.ingest("acme", "suppress/b.csv.gz", gz(t, "phone,email\n+351912345678,ana@example.com\n913000111,\n"))
	if r := e.readReport("acme", "b.csv.gz.result.csv"); !strings.Contains(r, "2,2,1,0") {
		t.Errorf("gz result report = %q, want 2 added (every-channel phone, new number) and 1 already", r)
	}
	if !e.suppressed("acme", "email", "+351913000111") {
		t.Error(".gz row not suppressed")
	}

	e.ingest("acme", "suppress/again.csv", []byte("\xEF\xBB\xBFEmail;Phone;Channel;Reason\nAna@Example.com;;;bounced\n;912 345 678;sms;STOP\n"))
	if r := e.readReport("acme", "again.csv.errors.csv"); !strings.Contains(r, "same content as suppress/a.csv") {
		t.Errorf("duplicate report = %q", r)
	}

	// legacy: windows-1252 and skip_rows: the good rows are applied, the
	// bad one reported.
	e.ingest("legacy", "suppress/c.csv", []byte("phone,reason\n912000111,Jos\xe9 pediu\n12,bad\n"))
	if r := e.readReport("legacy", "c.csv.errors.csv"); !strings.Contains(r, "3,phone,12,") {
		t.Errorf("skip_rows errors report = %q", r)
	}
	sups, err := e.st.SuppressionPage(context.Background(), "legacy", "", "", 0, 10)
	if err != nil || len(sups) != 1 || sups[0].Reason != "José pediu" {
		t.Errorf("legacy suppressions = %+v %v", sups, err)
	}
}

// A header without email or phone, or with an unknown column, rejects the
// file on line 1.
func TestSuppressFileHeaderIsChecked(t *testing.T) {
	e := newTestEnv(t, nil)
	e.ingest("acme", "suppress/x.csv", []byte("reason\nx\n"))
	if r := e.readReport("acme", "x.csv.errors.csv"); !strings.Contains(r, "neither an email nor a phone column") {
		t.Errorf("report = %q", r)
	}
	e.ingest("acme", "suppress/y.csv", []byte("email,first_name\na@example.com,Ana\n"))
	if r := e.readReport("acme", "y.csv.errors.csv"); !strings.Contains(r, `first_name"", is not a suppression column`) {
		t.Errorf("report = %q", r)
	}
}
