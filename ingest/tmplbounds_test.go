package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// patientRenders gives renders a deadline no busy machine reaches, so the
// tests see the step and size bounds, whatever the load.
func patientRenders(cfg *config.Config) { cfg.Ingest.RenderTimeout = config.Duration(time.Hour) }

// storedMessages counts every message in the store.
func (e *testEnv) storedMessages() int64 {
	e.t.Helper()
	counts, err := e.st.StatusCounts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		if c.Kind == "messages" {
			n += c.Count
		}
	}
	return n
}

// TestHostileTemplateUploadsAreRefusedWithTheirReason: the templates of the
// issue, dropped into templates/ as text and as html, are refused at upload
// (the html test render included) with a report that says why and where;
// no version is stored.
func TestHostileTemplateUploadsAreRefusedWithTheirReason(t *testing.T) {
	e := newTestEnv(t, patientRenders)
	replaceChain := `{{$x := replace "a" "aaaaaaaaaa" "aaaaaaaaaa"}}` + strings.Repeat(`{{$x = replace "a" "aaaaaaaaaa" $x}}`, 7) + "ok"
	for _, tc := range []struct{ name, src, want string }{
		{"bigrange", "channel: sms\n---\n{{range 10000000}}0123456789012345678901234567890123456789012345678{{end}}\n",
			"templates/bigrange.tmpl, line 3, column 9: this range repeats its body 10000000 times"},
		{"nested", "channel: sms\n---\n{{range 200000}}{{range 200000}}{{end}}{{end}}\n",
			"templates/nested.tmpl, line 3, column 9: this range repeats its body 200000 times"},
		{"nestedhtml", "channel: email\nformat: html\n---\n<p>{{range 200000}}{{range 200000}}{{end}}{{end}}</p>\n",
			"templates/nestedhtml.tmpl, line 4, column 12: this range repeats its body 200000 times"},
		{"computedhtml", "channel: email\nformat: html\n---\n<p>{{range (len (printf \"%0999999d\" 0))}}{{range (len (printf \"%0999999d\" 0))}}{{end}}{{end}}</p>\n",
			"templates/computedhtml.tmpl, line 4, column 1: even with every variable empty, the template does too much work"},
		{"replace", "channel: sms\n---\n" + replaceChain + "\n",
			`templates/replace.tmpl, line 3, column 1: even with every variable empty, replace would make a text of 10000 bytes, larger than 4 KiB, the limit of channel "sms"`},
		{"replacehtml", "channel: email\nformat: html\n---\n" + replaceChain + "\n",
			`templates/replacehtml.tmpl, line 4, column 1: even with every variable empty, replace would make a text of 10000000 bytes, larger than 1 MiB, the limit of channel "email"`},
	} {
		e.template("acme", tc.name, tc.src)
		if report := e.readReport("acme", tc.name+".tmpl.errors.txt"); !strings.HasPrefix(report, tc.want) {
			t.Errorf("%s: report:\n%s\nwant it to start with:\n%s", tc.name, report, tc.want)
		}
		if _, err := e.st.LatestTemplate(context.Background(), "acme", tc.name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: a version was stored (%v)", tc.name, err)
		}
	}
	if n := e.storedMessages(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestFileWhoseRowsPassTheTemplatesBoundsIsRejectedQueuingNothing: a
// template harmless with empty values passes the upload, but a file whose
// values make it loop too long, write past the channel's limit, or build a
// huge text in a variable is rejected at the first such row, with the
// reason and the line, and nothing of it is stored.
func TestFileWhoseRowsPassTheTemplatesBoundsIsRejectedQueuingNothing(t *testing.T) {
	e := newTestEnv(t, patientRenders)
	pad := strings.Repeat("p", 1000)
	for _, tc := range []struct{ name, src, want string }{
		{"loops", "channel: sms\n---\n{{range (len .pad)}}{{range (len $.pad)}}{{end}}{{end}}Hi",
			"the template does too much work: one message took more than 100000 steps"},
		{"output", "channel: sms\n---\n{{range (len .pad)}}{{$.pad}}{{end}}",
			`the rendered body is larger than 4 KiB, the limit of channel "sms"`},
		{"chain", "channel: email\n---\n{{$x := replace \"p\" \"pppppppppp\" .pad}}" + strings.Repeat(`{{$x = replace "p" "pppppppppp" $x}}`, 7) + "{{$x}}",
			`replace would make a text of 10000000 bytes, larger than 1 MiB, the limit of channel "email"`},
	} {
		e.template("acme", tc.name, tc.src)
		if _, err := e.st.LatestTemplate(context.Background(), "acme", tc.name); err != nil {
			t.Fatalf("%s: the template was not stored: %v\n%s", tc.name, err, e.readReport("acme", tc.name+".tmpl.errors.txt"))
		}
		csv := "email,phone,pad\nana@example.com,912345678,x\nbob@example.com,912345679," + pad + "\ncid@example.com,912345670," + pad + "\n"
		rel := "inbox/" + tc.name + "/" + tc.name + ".csv"
		e.ingest("acme", rel, []byte(csv))
		f := e.lastFile("acme")
		if f.Name != rel || f.Status != store.FileRejected {
			t.Fatalf("%s: file %+v, want it rejected", tc.name, f)
		}
		report := strings.ReplaceAll(e.readReport("acme", tc.name+".csv.errors.csv"), `""`, `"`) // CSV quoting
		want := fmt.Sprintf("the template %q cannot be filled in for the row on line 3: %s", tc.name, tc.want)
		if !strings.Contains(report, want) || !strings.HasPrefix(report, "line,column,value,error\n3,") {
			t.Errorf("%s: report:\n%s\nwant line 3 and %q", tc.name, report, want)
		}
		if _, err := os.Stat(e.home("acme", rel)); !os.IsNotExist(err) {
			t.Errorf("%s: the file is still in the inbox", tc.name)
		}
	}
	if n := e.storedMessages(); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

// slowTemplate is legal (each row within the step budget) but slow: a
// file of many rows takes minutes.
const slowTemplate = "channel: sms\n---\n{{range (len .pad)}}{{range 90}}{{end}}{{end}}Hi"

// writeSlowFile writes a file of rows that each take slowTemplate most of
// the step budget.
func (e *testEnv) writeSlowFile(rel string) {
	var b strings.Builder
	b.WriteString("phone,pad\n")
	pad := strings.Repeat("p", 1000)
	for i := range 20_000 {
		fmt.Fprintf(&b, "91%07d,%s\n", i, pad)
	}
	e.write("acme", rel, []byte(b.String()))
}

// runUntilIngestStarts runs a fresh Ingester over e's store until a job of
// the file exists (the file is being read), then cancels it and waits for
// Run to return: the daemon's shutdown mid-file.
func (e *testEnv) runUntilIngestStarts(rel string) {
	e.t.Helper()
	in, err := New(Options{Config: e.cfg, Store: e.st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitFor(e.t, "the ingest to start", 30*time.Second, func() bool {
		jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
		return len(jobs) > 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			e.t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Fatal("Run did not return within 30s of the shutdown: the ingest of a slow template is not interruptible")
	}
}

// TestShutdownStopsTheIngestOfASlowTemplate: a file whose every row takes
// a render of most of the budget does not hold the shutdown; the file is
// left whole in the inbox for the next start, and the stop is not counted
// as a failed attempt.
func TestShutdownStopsTheIngestOfASlowTemplate(t *testing.T) {
	e := newTestEnv(t, patientRenders)
	e.template("acme", "slow", slowTemplate)
	rel := "inbox/slow/big.csv"
	e.writeSlowFile(rel)
	e.runUntilIngestStarts(rel)

	if _, err := os.Stat(e.home("acme", rel)); err != nil {
		t.Errorf("the file is not in the inbox after the shutdown: %v", err)
	}
	if n := e.storedMessages(); n != 0 {
		t.Errorf("%d messages stored by an ingest cut by the shutdown", n)
	}
	// A stop on purpose says nothing about the upload: no attempt counted.
	if a, err := e.st.IngestAttemptFor(context.Background(), "acme", rel); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("attempt record = %+v, %v; want none (a shutdown is not a failed attempt)", a, err)
	}
}

// TestUploadNotFinishedTwiceIsQuarantinedAndNotRetried: a file the daemon
// was killed reading twice (its attempt record left behind; a shutdown in
// between is not counted), is at the next start not read again: it is
// quarantined (a file of that status in the store, for the API), reported
// to the partner, moved to the archive; a later start does nothing more.
func TestUploadNotFinishedTwiceIsQuarantinedAndNotRetried(t *testing.T) {
	e := newTestEnv(t, patientRenders)
	ctx := context.Background()
	e.template("acme", "slow", slowTemplate)
	rel := "inbox/slow/big.csv"
	e.writeSlowFile(rel)
	fi, err := os.Stat(e.home("acme", rel))
	if err != nil {
		t.Fatal(err)
	}
	// What a kill -9 mid-file leaves.
	if err := e.st.StartIngestAttempt(ctx, store.IngestAttempt{Partner: "acme", Name: rel, Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	// An attempt stopped on purpose mid-file is taken back.
	e.runUntilIngestStarts(rel)
	if a, err := e.st.IngestAttemptFor(ctx, "acme", rel); err != nil || a.Attempts != 1 {
		t.Fatalf("after a shutdown mid-file: %+v, %v; want still 1 attempt", a, err)
	}
	// What a second kill -9 mid-file leaves.
	if err := e.st.StartIngestAttempt(ctx, store.IngestAttempt{Partner: "acme", Name: rel, Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Attempts: 2}); err != nil {
		t.Fatal(err)
	}

	// A template the daemon did not finish twice is quarantined as well.
	tmpl := e.write("acme", "templates/stuck.tmpl", []byte("channel: sms\n---\nHi\n"))
	ti, _ := os.Stat(tmpl)
	e.st.StartIngestAttempt(ctx, store.IngestAttempt{Partner: "acme", Name: "templates/stuck.tmpl", Size: ti.Size(), MTime: ti.ModTime().UnixNano(), Attempts: 2})

	e.runUntil("both quarantined", func() bool {
		fs, _ := e.st.ListFiles(ctx, store.FileFilter{Partner: "acme", Status: store.FileQuarantined})
		if len(fs) != 2 || fs[0].ArchivePath == "" || fs[1].ArchivePath == "" {
			return false
		}
		// The attempt record is cleared last, after the report.
		for _, name := range []string{rel, "templates/stuck.tmpl"} {
			if _, err := e.st.IngestAttemptFor(ctx, "acme", name); !errors.Is(err, store.ErrNotFound) {
				return false
			}
		}
		return true
	})
	fs, _ := e.st.ListFiles(ctx, store.FileFilter{Partner: "acme", Status: store.FileQuarantined})
	for _, f := range fs {
		if !strings.Contains(f.Error, "so it will not be read again automatically") {
			t.Errorf("%s: error %q", f.Name, f.Error)
		}
		if _, err := os.Stat(f.ArchivePath); err != nil {
			t.Errorf("%s: not in the archive: %v", f.Name, err)
		}
		if _, err := os.Stat(e.home("acme", f.Name)); !os.IsNotExist(err) {
			t.Errorf("%s: still in the home", f.Name)
		}
	}
	if r := e.readReport("acme", "big.csv.errors.csv"); !strings.Contains(r, "dropgate stopped or failed while reading it 2 times, so it will not be read again automatically, and it was moved out of inbox/") {
		t.Errorf("file report:\n%s", r)
	}
	if r := e.readReport("acme", "stuck.tmpl.errors.txt"); !strings.HasPrefix(r, "templates/stuck.tmpl: this file was not processed") {
		t.Errorf("template report:\n%s", r)
	}
	if _, err := e.st.LatestTemplate(ctx, "acme", "stuck"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the quarantined template was stored: %v", err)
	}
	for _, name := range []string{rel, "templates/stuck.tmpl"} {
		if _, err := e.st.IngestAttemptFor(ctx, "acme", name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: attempt record left: %v", name, err)
		}
	}
	if n := e.storedMessages(); n != 0 {
		t.Errorf("%d messages stored", n)
	}

	// Not retried at the next start: that start reads a new file, and
	// records nothing else.
	before := len(e.files("acme"))
	e.template("acme", "welcome", welcomeSMS)
	sentinel := e.write("acme", "inbox/welcome/after.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	old := time.Now().Add(-time.Hour)
	os.Chtimes(sentinel, old, old)
	e.runUntil("the new file ingested", func() bool {
		f, err := e.st.LastFileNamed(ctx, "acme", "inbox/welcome/after.csv")
		return err == nil && f.ArchivePath != ""
	})
	if after := len(e.files("acme")); after != before+1 {
		t.Errorf("the next start recorded %d files, want only the new one", after-before)
	}
}

// runUntil runs a fresh Ingester until cond holds, then stops it.
func (e *testEnv) runUntil(what string, cond func() bool) {
	e.t.Helper()
	in, err := New(Options{Config: e.cfg, Store: e.st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(e.t, what, 30*time.Second, cond)
}

// TestTemplateThatFailsInsideTwiceIsQuarantined: dropgate's own failure
// (here: a stale report it cannot remove) on the same upload twice
// quarantines it at the second failure, with that failure as the reason.
func TestTemplateThatFailsInsideTwiceIsQuarantined(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	// A folder with something in it where the report goes: removing the
	// stale report fails.
	e.write("acme", "reports/hello.tmpl.errors.txt/x", []byte("x"))
	e.template("acme", "hello", welcomeSMS)
	a, err := e.st.IngestAttemptFor(ctx, "acme", "templates/hello.tmpl")
	if err != nil || a.Attempts != 1 || !strings.Contains(a.LastError, "cannot remove stale report") {
		t.Fatalf("after one failure: %+v, %v", a, err)
	}
	e.in.process(ctx, workItem{partner: "acme", rel: "templates/hello.tmpl"}) // the same bytes, again
	f := e.lastFile("acme")
	if f.Status != store.FileQuarantined || !strings.Contains(f.Error, "dropgate failed while reading it (cannot remove stale report") || f.ArchivePath == "" {
		t.Fatalf("file = %+v, want it quarantined with the failure", f)
	}
	if _, err := os.Stat(e.home("acme", "templates/hello.tmpl")); !os.IsNotExist(err) {
		t.Errorf("the template is still in templates/: %v", err)
	}
	if _, err := e.st.IngestAttemptFor(ctx, "acme", "templates/hello.tmpl"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("attempt record left: %v", err)
	}
}
