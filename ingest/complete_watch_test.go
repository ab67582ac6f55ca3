package ingest

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/store"
)

// runScanned starts the Ingester and waits for its first rescan: from then
// on, what happens in the homes arrives as events.
func (e *testEnv) runScanned() {
	e.t.Helper()
	e.run()
	select {
	case <-e.in.scanned:
	case <-time.After(30 * time.Second):
		e.t.Fatal("the watcher's first rescan did not finish")
	}
}

// waitWatched waits until the watcher watches a folder.
func (e *testEnv) waitWatched(dir string) {
	e.t.Helper()
	waitFor(e.t, "a watch on "+dir, 30*time.Second, func() bool {
		return slices.Contains(e.in.watcher.WatchList(), dir)
	})
}

// serverUpload writes a file the way the embedded SFTP and FTP servers do
// (homefs: a hidden name renamed into place on a clean close, then the
// ingester told), which is the one code path both protocols share.
func (e *testEnv) serverUpload(partner, rel string, data []byte) {
	e.t.Helper()
	h, err := homefs.Open(e.cfg.PartnerHome(partner), homefs.Options{Partner: partner, Notifier: e.in})
	if err != nil {
		e.t.Fatal(err)
	}
	defer h.Close()
	u, err := h.Create(rel)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := u.Write(data); err != nil {
		e.t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// serverRename renames through homefs, as an SFTP rename or FTP RNFR/RNTO.
func (e *testEnv) serverRename(partner, from, to string) {
	e.t.Helper()
	h, err := homefs.Open(e.cfg.PartnerHome(partner), homefs.Options{Partner: partner, Notifier: e.in})
	if err != nil {
		e.t.Fatal(err)
	}
	defer h.Close()
	if err := h.Rename(from, to); err != nil {
		e.t.Fatal(err)
	}
}

// A list in inbox/welcome/ that arrives while templates/welcome.tmpl is
// settling (or being read) waits for it, however each of the two arrives.
func TestListWaitsForItsSettlingTemplateHoweverEachArrives(t *testing.T) {
	tmpl := []byte(welcomeSMS)
	list := welcomeRows(2)
	templateWays := []struct {
		name   string
		arrive func(e *testEnv)
	}{
		{"template moved in from another folder", func(e *testEnv) {
			staging := filepath.Join(e.cfg.DataDir, "staging")
			os.MkdirAll(staging, 0o755)
			os.WriteFile(filepath.Join(staging, "welcome.tmpl"), tmpl, 0o644)
			if err := os.Rename(filepath.Join(staging, "welcome.tmpl"), e.home("acme", "templates/welcome.tmpl")); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"template written in place", func(e *testEnv) { e.write("acme", "templates/welcome.tmpl", tmpl) }},
		{"template uploaded over FTP or SFTP", func(e *testEnv) { e.serverUpload("acme", "templates/welcome.tmpl", tmpl) }},
	}
	listWays := []struct {
		name   string
		arrive func(e *testEnv)
	}{
		{"list renamed in", func(e *testEnv) {
			part := e.write("acme", "inbox/welcome/orders.csv.part", list)
			if err := os.Rename(part, e.home("acme", "inbox/welcome/orders.csv")); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"list uploaded over FTP or SFTP", func(e *testEnv) { e.serverUpload("acme", "inbox/welcome/orders.csv", list) }},
		{"list uploaded as .part and renamed over SFTP or FTP", func(e *testEnv) {
			e.serverUpload("acme", "inbox/welcome/orders.csv.part", list)
			e.serverRename("acme", "inbox/welcome/orders.csv.part", "inbox/welcome/orders.csv")
		}},
	}
	for _, tw := range templateWays {
		for _, lw := range listWays {
			t.Run(tw.name+", "+lw.name, func(t *testing.T) {
				t.Parallel()
				e := newTestEnv(t, nil)
				if err := os.MkdirAll(e.home("acme", "inbox/welcome"), 0o755); err != nil {
					t.Fatal(err)
				}
				e.runScanned()
				e.waitWatched(e.home("acme", "inbox/welcome"))
				tw.arrive(e)
				lw.arrive(e)
				fs := e.waitFiles("acme", 1)
				if len(fs) != 1 || fs[0].Name != "inbox/welcome/orders.csv" || fs[0].Status != store.FileQueued {
					t.Fatalf("files = %+v, want the list queued", fs)
				}
			})
		}
	}
}

// waitStatus waits until the partner's newest file has the status.
func (e *testEnv) waitStatus(partner, name, status string) store.File {
	e.t.Helper()
	var f store.File
	waitFor(e.t, name+" "+status, 30*time.Second, func() bool {
		for _, g := range e.files(partner) {
			if g.Name == name && g.Status == status {
				f = g
				return true
			}
		}
		return false
	})
	return f
}

func TestRenameModeThroughTheWatcher(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].Complete = config.CompleteRename })
	e.template("acme", "welcome", welcomeSMS)
	if err := os.MkdirAll(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runScanned()

	// Written in place by a local program: held with the rename advice.
	e.write("acme", "inbox/welcome/local.csv", welcomeRows(2))
	f := e.waitStatus("acme", "inbox/welcome/local.csv", store.FileHeld)
	if !strings.Contains(f.Error, "local.csv.part") {
		t.Errorf("held for %q", f.Error)
	}
	// Uploaded straight to its name through a server: held too.
	e.serverUpload("acme", "inbox/welcome/direct.csv", welcomeRows(3))
	e.waitStatus("acme", "inbox/welcome/direct.csv", store.FileHeld)

	// A local .part renamed over the held file: taken.
	part := e.write("acme", "inbox/welcome/local.csv.part", welcomeRows(2))
	if err := os.Rename(part, e.home("acme", "inbox/welcome/local.csv")); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("acme", "inbox/welcome/local.csv", store.FileQueued)
	// The client's rename through the server: taken.
	e.serverUpload("acme", "inbox/welcome/direct.csv.part", welcomeRows(3))
	e.serverRename("acme", "inbox/welcome/direct.csv.part", "inbox/welcome/direct.csv")
	e.waitStatus("acme", "inbox/welcome/direct.csv", store.FileQueued)
	// Moved in from another folder (a rename inotify reports as a create).
	staging := filepath.Join(e.cfg.DataDir, "staging")
	os.MkdirAll(staging, 0o755)
	os.WriteFile(filepath.Join(staging, "moved.csv"), welcomeRows(4), 0o644)
	if err := os.Rename(filepath.Join(staging, "moved.csv"), e.home("acme", "inbox/welcome/moved.csv")); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("acme", "inbox/welcome/moved.csv", store.FileQueued)
}

func TestMarkerModeThroughTheWatcher(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].Complete = config.CompleteMarker })
	e.template("acme", "welcome", welcomeSMS)
	if err := os.MkdirAll(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runScanned()
	e.serverUpload("acme", "inbox/welcome/orders.csv", welcomeRows(3))
	e.serverUpload("acme", "inbox/welcome/orders.csv.done", []byte("rows=3\n"))
	f := e.waitStatus("acme", "inbox/welcome/orders.csv", store.FileQueued)
	if f.RowsTotal != 3 {
		t.Errorf("file = %+v", f)
	}
	waitFor(t, "the marker archived", 30*time.Second, func() bool { return !e.exists("acme", "inbox/welcome/orders.csv.done") })
	if fs := e.files("acme"); len(fs) != 1 {
		t.Errorf("files = %+v, want only the list (the marker is no file of its own)", fs)
	}
}

// syncBuffer is a log sink safe for the watcher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatcherAddsNoWatchPastMaxFolders(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].MaxFolders = 2 })
	var logs syncBuffer
	e.in.log = slog.New(slog.NewTextHandler(io.MultiWriter(&logs), nil))
	e.runScanned()
	for _, d := range []string{"a", "b", "c", "d"} {
		if err := os.Mkdir(e.home("acme", "inbox/"+d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const warning = "partner has more folders in inbox/ and lists/ than max_folders allows"
	waitFor(t, "the warning", 30*time.Second, func() bool { return strings.Count(logs.String(), warning) > 0 })
	// A file written after the last mkdir is seen after the mkdir events:
	// once it is taken, every folder event has been handled.
	e.template("acme", "welcome", welcomeSMS)
	e.write("acme", "inbox/sentinel.csv", []byte("phone,message\n912345678,hi\n"))
	e.waitStatus("acme", "inbox/sentinel.csv", store.FileQueued)
	n := 0
	for _, w := range e.in.watcher.WatchList() {
		if strings.HasPrefix(w, e.home("acme", "inbox")+string(filepath.Separator)) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d folders of acme's inbox watched, want 2: %v", n, e.in.watcher.WatchList())
	}
	if c := strings.Count(logs.String(), warning); c != 1 {
		t.Errorf("warning logged %d times, want once:\n%s", c, logs.String())
	}
}

// An embedded server's upload moves in from the uploads folder, which
// nobody watches: inotify reports it as a plain Create, like a file moved
// in by a client. Seen after the server's own signal, it must still count
// as an upload, or complete = rename would take it at its second look.
func TestRenameModeHoldsServerUploadsMovedInFromTheUploadsFolder(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].Complete = config.CompleteRename })
	e.template("acme", "welcome", welcomeSMS)
	if err := os.MkdirAll(e.home("acme", "inbox/welcome"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runScanned()
	// Which of the event and the signal the watch loop sees first varies;
	// a few uploads see both orders.
	names := []string{"a.csv", "b.csv", "c.csv", "d.csv", "e.csv", "f.csv"}
	for i, name := range names {
		e.serverUpload("acme", "inbox/welcome/"+name, welcomeRows(2+i))
		e.waitStatus("acme", "inbox/welcome/"+name, store.FileHeld)
	}
	// A file written in place later is held after the quiet period: by
	// then any second look at the uploads has happened.
	e.write("acme", "inbox/welcome/sentinel.csv", welcomeRows(9))
	e.waitStatus("acme", "inbox/welcome/sentinel.csv", store.FileHeld)
	for _, f := range e.files("acme") {
		if f.Status != store.FileHeld {
			t.Errorf("%s: %s (%s), want held", f.Name, f.Status, f.Error)
		}
	}
}
