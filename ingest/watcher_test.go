package ingest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// queuedFiles returns the partner's files once one of them is no longer
// "received"; it fails the test after a generous timeout.
func (e *testEnv) waitFiles(partner string, n int) []store.File {
	e.t.Helper()
	var fs []store.File
	waitFor(e.t, fmt.Sprintf("%d ingested file(s)", n), 60*time.Second, func() bool {
		fs = e.files(partner)
		done := 0
		for _, f := range fs {
			if f.Status != store.FileReceived && f.ArchivePath != "" {
				done++
			}
		}
		return done >= n
	})
	return fs
}

// fakeClock is the watcher's clock in tests that decide when time passes:
// a file counts as still only once the test has moved the clock on.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// useFakeClock gives the watcher a clock that moves only when told; call
// it before run.
func (e *testEnv) useFakeClock() *fakeClock {
	c := &fakeClock{now: time.Now()}
	e.in.clock = c.Now
	return c
}

// waitTaken waits, moving the clock on by the quiet period at each look,
// until the partner has n files ingested.
func (e *testEnv) waitTaken(c *fakeClock, partner string, n int) []store.File {
	e.t.Helper()
	var fs []store.File
	waitFor(e.t, fmt.Sprintf("%d ingested file(s)", n), 60*time.Second, func() bool {
		c.Advance(testQuiet)
		fs = e.files(partner)
		done := 0
		for _, f := range fs {
			if f.Status != store.FileReceived && f.ArchivePath != "" {
				done++
			}
		}
		return done >= n
	})
	return fs
}

func TestWatcherWaitsForSlowWriterToFinish(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	clock := e.useFakeClock()
	e.runScanned()

	if err := os.Mkdir(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.waitWatched(e.home("acme", "inbox/welcome"))
	f, err := os.Create(e.home("acme", "inbox/welcome/slow.csv"))
	if err != nil {
		t.Fatal(err)
	}
	const rows = 8
	f.WriteString("phone,first_name,order_id\n")
	for i := range rows {
		// Half a row per write, less than the quiet period apart on the
		// watcher's clock, however long the machine takes between them.
		clock.Advance(testQuiet / 2)
		fmt.Fprintf(f, "91234%04d,Ana", i)
		clock.Advance(testQuiet / 2)
		fmt.Fprintf(f, ",%d\n", i)
		if got := e.files("acme"); len(got) != 0 {
			t.Fatalf("file taken after %d of %d rows: %+v", i, rows, got)
		}
	}
	f.Close()

	fs := e.waitTaken(clock, "acme", 1)
	if len(fs) != 1 || fs[0].Status != store.FileQueued || fs[0].RowsTotal != rows {
		t.Fatalf("files = %+v, want one queued file of %d rows", fs, rows)
	}
}

// barrier drops a real file after what the test did and waits until it is
// taken: the watcher handles events in order, and files of a partner are
// read in the order they settled, so whatever the test's earlier files
// caused has happened by then.
func (e *testEnv) barrier(c *fakeClock, name string) {
	e.t.Helper()
	rel := "inbox/" + name
	e.write("acme", rel, []byte("phone,message\n912345678,barrier\n"))
	waitFor(e.t, rel+" taken", 60*time.Second, func() bool {
		c.Advance(testQuiet)
		for _, f := range e.files("acme") {
			if f.Name == rel && f.ArchivePath != "" {
				return true
			}
		}
		return false
	})
}

func TestWatcherTakesRenamedFilepartExactlyOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	clock := e.useFakeClock()
	e.runScanned()

	part := e.write("acme", "inbox/welcome/orders.csv.filepart", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	e.barrier(clock, "b1.csv") // a temporary name is never taken, however quiet
	if got := e.files("acme"); len(got) != 1 {
		t.Fatalf("temporary file was ingested: %+v", got)
	}
	if err := os.Rename(part, e.home("acme", "inbox/welcome/orders.csv")); err != nil {
		t.Fatal(err)
	}
	e.waitTaken(clock, "acme", 2)
	e.barrier(clock, "b2.csv") // room for a second, wrong, ingest
	n := 0
	for _, f := range e.files("acme") {
		if f.Name == "inbox/welcome/orders.csv" {
			n++
			if f.Status != store.FileQueued {
				t.Errorf("file = %+v", f)
			}
		}
	}
	if n != 1 {
		t.Fatalf("files = %+v, want orders.csv exactly once", e.files("acme"))
	}
}

func TestWatcherIgnoresDotfilesAndTempNames(t *testing.T) {
	e := newTestEnv(t, nil)
	clock := e.useFakeClock()
	e.runScanned()
	for _, name := range []string{".hidden.csv", "a.part", "b.tmp", "c.csv~", "d.filepart"} {
		e.write("acme", "inbox/"+name, []byte("phone\n912345678\n"))
	}
	e.barrier(clock, "barrier.csv")
	if fs := e.files("acme"); len(fs) != 1 {
		t.Fatalf("files = %+v, want only the barrier", fs)
	}
}

func TestStartupRescanPicksUpFileDroppedWhileStopped(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	path := e.write("acme", "inbox/welcome/overnight.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	e.write("acme", "templates/late.tmpl", []byte("channel: sms\n---\nHi\n"))
	e.run()

	fs := e.waitFiles("acme", 1)
	if fs[0].Name != "inbox/welcome/overnight.csv" || fs[0].Status != store.FileQueued {
		t.Fatalf("files = %+v", fs)
	}
	waitFor(t, "template found at start", 10*time.Second, func() bool {
		_, err := e.st.LatestTemplate(context.Background(), "acme", "late")
		return err == nil
	})
}

func TestFileCompleteIngestsAtOnceWithoutQuietPeriod(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Ingest.QuietPeriod = config.Duration(time.Hour) })
	e.template("acme", "welcome", welcomeSMS)
	e.run()

	tmp := e.write("acme", "inbox/welcome/.upload-123", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	if err := os.Rename(tmp, e.home("acme", "inbox/welcome/now.csv")); err != nil {
		t.Fatal(err)
	}
	e.in.FileComplete("acme", "/inbox/welcome/now.csv")
	e.in.FileComplete("acme", "inbox/welcome/now.csv") // a repeated signal is harmless
	e.waitFiles("acme", 1)
	// A later signal is handled after the repeated one: once its file is
	// taken, a second ingest of now.csv would have happened.
	e.write("acme", "inbox/welcome/later.csv", []byte("phone,first_name,order_id\n912345679,Bo,2\n"))
	e.in.FileComplete("acme", "inbox/welcome/later.csv")
	fs := e.waitFiles("acme", 2)
	if len(fs) != 2 || fs[0].Name != "inbox/welcome/now.csv" || fs[0].Status != store.FileQueued {
		t.Fatalf("files = %+v, want now.csv queued once, then later.csv", fs)
	}
}

func TestWatcherFollowsTemplateFolderCreatedLater(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "promo", "channel: sms\n---\nPromo for {{.first_name}}\n")
	e.run()

	if err := os.Mkdir(e.home("acme", "inbox/promo"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("acme", "inbox/promo/list.csv", []byte("phone,first_name\n912345678,Ana\n"))
	fs := e.waitFiles("acme", 1)
	if fs[0].Status != store.FileQueued {
		t.Fatalf("file = %+v", fs[0])
	}
}

func TestResultReportIsWrittenWhenJobEnds(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/list.csv", []byte("phone,first_name,order_id,ref\n912345678,Ana,1,r-1\n912345679,Bob,2,r-2\n"))
	f := e.lastFile("acme")
	e.run()
	if _, err := e.st.CancelJob(context.Background(), f.JobID); err != nil {
		t.Fatal(err)
	}
	var report string
	waitFor(t, "result report", 10*time.Second, func() bool {
		report = e.readReport("acme", "list.csv.result.csv")
		return report != ""
	})
	want := "line,ref,recipient,status,provider_id,error,sent_at\n2,r-1,+351912345678,cancelled,,,\n3,r-2,+351912345679,cancelled,,,\n"
	if report != want {
		t.Errorf("result report:\n%s\nwant:\n%s", report, want)
	}
	// The report is written first, then the job is marked reported.
	waitFor(t, "the job marked reported", 10*time.Second, func() bool {
		j, err := e.st.Job(context.Background(), f.JobID)
		return err == nil && !j.ReportedAt.IsZero()
	})
	if strings.Contains(report, "\r") {
		t.Error("report has CR line ends")
	}
}

func TestWatcherTakesTempNameRenamedInPlaceWithoutWaitingForQuietPeriod(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Ingest.QuietPeriod = config.Duration(time.Hour) })
	e.template("acme", "welcome", welcomeSMS)
	// The folder exists before the watcher starts: in a folder created just
	// now, events from before its watch was added are lost, and a file
	// found by the folder's first scan waits for the quiet period.
	if err := os.Mkdir(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runScanned()

	part := e.write("acme", "inbox/welcome/orders.csv.part", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	if err := os.Rename(part, e.home("acme", "inbox/welcome/orders.csv")); err != nil {
		t.Fatal(err)
	}
	// The quiet period is an hour: only the rename fast path can take it.
	fs := e.waitFiles("acme", 1)
	if len(fs) != 1 || fs[0].Status != store.FileQueued {
		t.Fatalf("files = %+v", fs)
	}
}

// A template written in place settles for the quiet period; a list renamed
// into its folder meanwhile is taken at once by the rename fast path, but
// waits for the template instead of being rejected for naming one that
// does not exist yet.
func TestListRenamedInWhileItsTemplateSettlesWaitsForTheTemplate(t *testing.T) {
	e := newTestEnv(t, nil)
	if err := os.MkdirAll(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runScanned()

	e.write("acme", "templates/welcome.tmpl", []byte(welcomeSMS))
	part := e.write("acme", "inbox/welcome/orders.csv.part", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	if err := os.Rename(part, e.home("acme", "inbox/welcome/orders.csv")); err != nil {
		t.Fatal(err)
	}
	fs := e.waitFiles("acme", 1)
	if len(fs) != 1 || fs[0].Name != "inbox/welcome/orders.csv" || fs[0].Status != store.FileQueued {
		t.Fatalf("files = %+v, want the list queued", fs)
	}
}
