package ingest

import (
	"context"
	"fmt"
	"os"
	"strings"
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

func TestWatcherWaitsForSlowWriterToFinish(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.run()

	if err := os.Mkdir(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the watcher add the new folder
	f, err := os.Create(e.home("acme", "inbox/welcome/slow.csv"))
	if err != nil {
		t.Fatal(err)
	}
	const rows = 8
	f.WriteString("phone,first_name,order_id\n")
	for i := range rows {
		// Half a row per write, spaced well below the quiet period.
		time.Sleep(testQuiet / 4)
		fmt.Fprintf(f, "91234%04d,Ana", i)
		time.Sleep(testQuiet / 4)
		fmt.Fprintf(f, ",%d\n", i)
		if got := e.files("acme"); len(got) != 0 {
			t.Fatalf("file taken after %d of %d rows: %+v", i, rows, got)
		}
	}
	f.Close()

	fs := e.waitFiles("acme", 1)
	if len(fs) != 1 || fs[0].Status != store.FileQueued || fs[0].RowsTotal != rows {
		t.Fatalf("files = %+v, want one queued file of %d rows", fs, rows)
	}
}

func TestWatcherTakesRenamedFilepartExactlyOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.run()

	part := e.write("acme", "inbox/welcome/orders.csv.filepart", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	time.Sleep(2 * testQuiet) // a temporary name is never taken, however quiet
	if got := e.files("acme"); len(got) != 0 {
		t.Fatalf("temporary file was ingested: %+v", got)
	}
	if err := os.Rename(part, e.home("acme", "inbox/welcome/orders.csv")); err != nil {
		t.Fatal(err)
	}
	e.waitFiles("acme", 1)
	time.Sleep(3 * testQuiet) // room for a second, wrong, ingest
	if fs := e.files("acme"); len(fs) != 1 || fs[0].Status != store.FileQueued {
		t.Fatalf("files = %+v, want exactly one queued", fs)
	}
}

func TestWatcherIgnoresDotfilesAndTempNames(t *testing.T) {
	e := newTestEnv(t, nil)
	e.run()
	for _, name := range []string{".hidden.csv", "a.part", "b.tmp", "c.csv~", "d.filepart"} {
		e.write("acme", "inbox/"+name, []byte("phone\n912345678\n"))
	}
	time.Sleep(3 * testQuiet)
	if fs := e.files("acme"); len(fs) != 0 {
		t.Fatalf("files = %+v, want none", fs)
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
	fs := e.waitFiles("acme", 1)
	time.Sleep(200 * time.Millisecond)
	if fs = e.files("acme"); len(fs) != 1 || fs[0].Status != store.FileQueued {
		t.Fatalf("files = %+v, want one queued", fs)
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
	j, err := e.st.Job(context.Background(), f.JobID)
	if err != nil || j.ReportedAt.IsZero() {
		t.Errorf("job not marked reported: %+v %v", j, err)
	}
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
	e.run()
	time.Sleep(100 * time.Millisecond) // let the start-up rescan finish

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
	e.run()
	time.Sleep(100 * time.Millisecond) // let the start-up rescan finish

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
