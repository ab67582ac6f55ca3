package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// arrive writes a file and ingests it synchronously as having arrived how.
func (e *testEnv) arrive(partner, rel string, data []byte, how arrival) {
	e.t.Helper()
	e.write(partner, rel, data)
	it := workItem{partner: partner, rel: rel}
	e.in.setArrival(it, how)
	e.in.process(context.Background(), it)
}

// exists reports whether a file is in a partner's home.
func (e *testEnv) exists(partner, rel string) bool {
	_, err := os.Stat(e.home(partner, rel))
	return err == nil
}

// welcomeRows is a list for the welcome template with n rows, each ending
// in a line end.
func welcomeRows(n int) []byte {
	var b bytes.Buffer
	b.WriteString("phone,first_name,order_id\n")
	for i := range n {
		fmt.Fprintf(&b, "91234%04d,Ana,%d\n", i, i)
	}
	return b.Bytes()
}

func TestCloseHoldsUploadWhoseLastLineHasNoLineEnd(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	whole := welcomeRows(3)
	cut := whole[:len(whole)-4] // inside the last row's last value

	e.arrive("acme", "inbox/welcome/orders.csv", cut, arrivedUpload)
	f := e.lastFile("acme")
	if f.Status != store.FileHeld || f.Error != cutOffReason || f.JobID != 0 {
		t.Fatalf("file = %+v, want held for %q", f, cutOffReason)
	}
	want := "line,column,value,error\n0,,,\"" + cutOffReason + "\"\n"
	if got := e.readReport("acme", "orders.csv.errors.csv"); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	if !e.exists("acme", "inbox/welcome/orders.csv") {
		t.Error("held file left the inbox")
	}
	// Seen again (a second event, a rescan): nothing new is recorded.
	e.arrive("acme", "inbox/welcome/orders.csv", cut, arrivedUnknown)
	if fs := e.files("acme"); len(fs) != 1 {
		t.Fatalf("files = %+v, want the one held", fs)
	}
	// The whole file replaces it and is taken.
	e.arrive("acme", "inbox/welcome/orders.csv", whole, arrivedUpload)
	fs := e.files("acme")
	if len(fs) != 2 || fs[0].Status != store.FileReplaced || fs[1].Status != store.FileQueued || fs[1].RowsTotal != 3 {
		t.Fatalf("files = %+v, want held→replaced, then queued with 3 rows", fs)
	}
	if e.readReport("acme", "orders.csv.errors.csv") != "" {
		t.Error("the held report was not removed")
	}
}

func TestCloseRuleCases(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		held       bool
	}{
		{"complete", "phone,first_name,order_id\n912345678,Ana,1\n", false},
		{"crlf", "phone,first_name,order_id\r\n912345678,Ana,1\r\n", false},
		{"cut in last value", "phone,first_name,order_id\n912345678,Ana,1\n912345679,Bo", true},
		{"one row without line end", "phone,first_name,order_id\n912345678,Ana,1", true},
		{"header alone without line end", "phone,first_name,order_id", false},
		{"cut after CR", "phone,first_name,order_id\r\n912345678,Ana,1\r", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.template("acme", "welcome", welcomeSMS)
			e.arrive("acme", "inbox/welcome/l.csv", []byte(tc.data), arrivedWritten)
			if f := e.lastFile("acme"); (f.Status == store.FileHeld) != tc.held {
				t.Errorf("file = %+v, held want %v", f, tc.held)
			}
		})
	}
}

func TestCutGzipIsReportedAsCutNotAsInternalError(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(welcomeRows(2000))
	zw.Close()
	e.arrive("acme", "inbox/welcome/big.csv.gz", gz.Bytes()[:gz.Len()/2], arrivedUpload)
	f := e.lastFile("acme")
	if f.Status != store.FileRejected || f.Error != gzipCutMessage {
		t.Fatalf("file = %+v, want rejected with %q", f, gzipCutMessage)
	}
}

func TestReuploadExtendingAnEarlierFileQueuesOnlyTheNewRows(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	whole := welcomeRows(10)
	// A client died after 4 whole rows (the last byte a line end: it
	// passes the cut rule and is queued).
	first := whole[:bytes.Index(whole, []byte("912340004"))]
	e.arrive("acme", "inbox/welcome/orders.csv", first, arrivedUpload)
	f1 := e.lastFile("acme")
	if f1.Status != store.FileQueued || f1.RowsTotal != 4 {
		t.Fatalf("first = %+v", f1)
	}

	e.arrive("acme", "inbox/welcome/orders.csv", whole, arrivedUpload)
	f2 := e.lastFile("acme")
	if f2.Status != store.FileQueued || f2.RowsTotal != 6 {
		t.Fatalf("second = %+v, want queued with the 6 new rows", f2)
	}
	var lines []int
	for _, m := range append(e.messages(f1.JobID), e.messages(f2.JobID)...) {
		lines = append(lines, m.Line)
	}
	if fmt.Sprint(lines) != "[2 3 4 5 6 7 8 9 10 11]" {
		t.Errorf("lines queued by both jobs = %v, want each of 2..11 once", lines)
	}
	note := fmt.Sprintf("lines 2-5 were queued by job %d from the earlier upload of this name; lines 6-11 are queued now", f1.JobID)
	if got := e.readReport("acme", "orders.csv.errors.csv"); !strings.Contains(got, "0,,,"+note+"\n") {
		t.Errorf("report:\n%s\nwant the line %q", got, note)
	}

	// The same bytes again are still refused as a duplicate.
	e.arrive("acme", "inbox/welcome/orders.csv", whole, arrivedUpload)
	if f3 := e.lastFile("acme"); f3.Status != store.FileRejected || !strings.Contains(f3.Error, "same content") {
		t.Errorf("identical upload = %+v, want refused as duplicate", f3)
	}
}

func TestFileOfAnotherNameOrContentIsNotTakenAsAnExtension(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	whole := welcomeRows(5)
	e.arrive("acme", "inbox/welcome/a.csv", whole[:bytes.Index(whole, []byte("912340003"))], arrivedUpload)
	e.arrive("acme", "inbox/welcome/b.csv", whole, arrivedUpload) // another name
	if f := e.lastFile("acme"); f.RowsTotal != 5 {
		t.Errorf("other name = %+v, want all 5 rows", f)
	}
	changed := bytes.Replace(whole, []byte("Ana,0"), []byte("Ann,0"), 1)
	e.arrive("acme", "inbox/welcome/a.csv", changed, arrivedUpload) // same name, other start
	if f := e.lastFile("acme"); f.RowsTotal != 5 {
		t.Errorf("other content = %+v, want all 5 rows", f)
	}
}

func TestRenameModeTakesOnlyARenamedUpload(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].Complete = config.CompleteRename })
	e.template("acme", "welcome", welcomeSMS)
	data := welcomeRows(2)

	e.arrive("acme", "inbox/welcome/orders.csv", data, arrivedUpload)
	f := e.lastFile("acme")
	if f.Status != store.FileHeld || !strings.Contains(f.Error, "upload it as orders.csv.part") {
		t.Fatalf("direct upload = %+v, want held", f)
	}
	if got := e.readReport("acme", "orders.csv.errors.csv"); !strings.Contains(got, "complete = rename") {
		t.Errorf("report = %q", got)
	}
	// Found again by a scan: still held, nothing new.
	e.arrive("acme", "inbox/welcome/orders.csv", data, arrivedUnknown)
	if fs := e.files("acme"); len(fs) != 1 {
		t.Fatalf("files = %+v", fs)
	}
	// The same bytes renamed from a temporary name count.
	e.arrive("acme", "inbox/welcome/orders.csv", data, arrivedRenamed)
	if f := e.lastFile("acme"); f.Status != store.FileQueued || f.RowsTotal != 2 {
		t.Fatalf("renamed upload = %+v, want queued", f)
	}
	// Written in place by a local program: held too.
	e.arrive("acme", "inbox/welcome/local.csv", welcomeRows(3), arrivedWritten)
	if f := e.lastFile("acme"); f.Status != store.FileHeld {
		t.Fatalf("written in place = %+v, want held", f)
	}
}

func TestMarkerModeTakesAFileOnceItsMarkerArrives(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].Complete = config.CompleteMarker })
	e.template("acme", "welcome", welcomeSMS)
	data := welcomeRows(3)
	sum := sha256.Sum256(data)

	e.arrive("acme", "inbox/welcome/orders.csv", data, arrivedUpload)
	if fs := e.files("acme"); len(fs) != 0 {
		t.Fatalf("file without marker taken: %+v", fs)
	}
	e.arrive("acme", "inbox/welcome/orders.csv.done", fmt.Appendf(nil, "sha256=%x\nrows=3\n", sum), arrivedUpload)
	f := e.lastFile("acme")
	if f.Status != store.FileQueued || f.RowsTotal != 3 {
		t.Fatalf("file = %+v, want queued", f)
	}
	if e.exists("acme", "inbox/welcome/orders.csv.done") || e.exists("acme", "inbox/welcome/orders.csv") {
		t.Error("file or marker left in the inbox")
	}
	archived, _ := filepath.Glob(filepath.Join(e.cfg.ArchiveDir(), "acme", "*", "orders.csv.done"))
	if len(archived) != 1 {
		t.Errorf("marker not archived: %v", archived)
	}

	// A marker first waits for its file; sha256sum's output is a marker.
	other := welcomeRows(4)
	osum := sha256.Sum256(other)
	e.arrive("acme", "inbox/welcome/next.csv.done", []byte(hex.EncodeToString(osum[:])+"  next.csv\n"), arrivedUpload)
	if f := e.lastFile("acme"); f.Name != "inbox/welcome/orders.csv" {
		t.Fatalf("marker alone took something: %+v", f)
	}
	e.arrive("acme", "inbox/welcome/next.csv", other, arrivedUpload)
	if f := e.lastFile("acme"); f.Name != "inbox/welcome/next.csv" || f.Status != store.FileQueued {
		t.Fatalf("file after its marker = %+v", f)
	}
}

func TestMarkerMismatchRejectsTheFile(t *testing.T) {
	for _, tc := range []struct {
		name, marker, want string
	}{
		{"sha256", "sha256=" + strings.Repeat("ab", 32) + "\n", "the file's SHA-256 is"},
		{"rows", "rows=4\n", "the file has 3 rows but its marker l.csv.done says 4"},
		{"garbage", "please send\n", "line 1 of the marker l.csv.done is not understood"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *config.Config) { c.Partners[0].Complete = config.CompleteMarker })
			e.template("acme", "welcome", welcomeSMS)
			e.write("acme", "inbox/welcome/l.csv", welcomeRows(3))
			e.arrive("acme", "inbox/welcome/l.csv.done", []byte(tc.marker), arrivedUpload)
			f := e.lastFile("acme")
			if f.Status != store.FileRejected || !strings.Contains(f.Error, tc.want) || f.JobID != 0 {
				t.Fatalf("file = %+v, want rejected with %q", f, tc.want)
			}
			if !strings.Contains(e.readReport("acme", "l.csv.errors.csv"), tc.want) {
				t.Errorf("report = %q", e.readReport("acme", "l.csv.errors.csv"))
			}
			if e.exists("acme", "inbox/welcome/l.csv.done") {
				t.Error("marker left in the inbox")
			}
		})
	}
}

func TestArchiveLeavesAnUploadThatReplacedTheFileRead(t *testing.T) {
	e := newTestEnv(t, nil)
	p := e.in.partners["acme"]
	abs := e.write("acme", "inbox/l.csv", []byte("old\n"))
	read, err := os.Stat(abs)
	if err != nil {
		t.Fatal(err)
	}
	// A new upload renamed over the name while the old one was read.
	tmp := e.write("acme", "inbox/.new", []byte("new\n"))
	if err := os.Rename(tmp, abs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.in.archive(p, abs, read); err != errReplaced {
		t.Fatalf("archive = %v, want errReplaced", err)
	}
	if b, err := os.ReadFile(abs); err != nil || string(b) != "new\n" {
		t.Errorf("inbox/l.csv = %q, %v; want the new upload left in place", b, err)
	}
	archived, _ := filepath.Glob(filepath.Join(e.cfg.ArchiveDir(), "acme", "*", "*"))
	if len(archived) != 0 {
		t.Errorf("archived %v", archived)
	}
}
