package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
)

// opener opens a store handle on the database key names: each call is a
// node of its own on one shared database.
type opener func(t *testing.T, key string) *store.Store

// onEngines runs f on SQLite and, when a test database is configured
// (always on CI), on PostgreSQL: the engines several nodes can share.
func onEngines(t *testing.T, sqlite bool, f func(t *testing.T, open opener)) {
	if sqlite {
		t.Run("sqlite", func(t *testing.T) {
			f(t, func(t *testing.T, key string) *store.Store {
				st, err := store.Open(context.Background(), key)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			})
		})
	}
	t.Run("postgres", func(t *testing.T) {
		if why := pgtest.Missing(); why != "" {
			t.Fatal(why)
		}
		if pgtest.DSN() == "" {
			t.Skip("no PostgreSQL test database: set " + pgtest.EnvVar)
		}
		f(t, func(t *testing.T, key string) *store.Store {
			st, err := store.OpenPostgres(context.Background(), pgtest.SchemaFor(t, key))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

// newNode is one node: an Ingester named node over its own store handle,
// sharing cfg's data_dir (the homes) with the other nodes.
func newNode(t *testing.T, cfg *config.Config, st *store.Store, node string) *testEnv {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node)
	}
	in, err := New(Options{Config: cfg, Store: st, Logger: logger, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.watcher.Close() })
	return &testEnv{t: t, cfg: cfg, st: st, in: in}
}

func nodesConfig(t *testing.T) *config.Config {
	t.Helper()
	return nodeConfig(t, t.TempDir())
}

// sharedNodeConfig is a node's config with a data_dir of its own whose
// partners/ and archive/ are links into the shared folder, as the README
// lays two nodes out (one mount, so the archive's links stay on one
// filesystem).
func sharedNodeConfig(t *testing.T, shared string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"partners", "archive"} {
		if err := os.MkdirAll(filepath.Join(shared, sub), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(shared, sub), filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	return nodeConfig(t, dir)
}

func nodeConfig(t *testing.T, dataDir string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Ingest.QuietPeriod = config.Duration(testQuiet)
	cfg.Ingest.BatchSize = 500
	cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Timezone: "Europe/Lisbon", Channels: []string{"sms"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// bigCSV is a file of n rows, long enough that two nodes reading it at
// once would overlap.
func bigCSV(tag string, n int) []byte {
	var b strings.Builder
	b.WriteString("phone,message\n")
	for i := range n {
		fmt.Fprintf(&b, "9123%05d,%s row %d\n", i, tag, i)
	}
	return []byte(b.String())
}

// Two nodes watch one folder of homes (both see every file) and share one
// database; files are uploaded through either node's server. Each file
// is read by one node only: one file record, one job, no duplicate report.
func TestTwoNodesSharingTheHomesIngestEachFileOnce(t *testing.T) {
	onEngines(t, true, func(t *testing.T, open opener) {
		shared := t.TempDir()
		cfgA, cfgB := sharedNodeConfig(t, shared), sharedNodeConfig(t, shared)
		db := filepath.Join(shared, "dropgate.db") // one database (a schema on PostgreSQL)
		a := newNode(t, cfgA, open(t, db), "A")
		b := newNode(t, cfgB, open(t, db), "B")
		a.runScanned()
		b.runScanned()
		const files, rows = 24, 2000
		for i := range files {
			via := a
			if i%2 == 1 {
				via = b
			}
			via.serverUpload("acme", fmt.Sprintf("inbox/f%02d.csv", i), bigCSV(fmt.Sprint(i), rows))
		}
		a.waitFiles("acme", files)
		// Room for a second, wrong, read by the slower node: a file taken
		// by both would show as a second record or a rejected duplicate.
		a.barrier(&fakeClock{}, "barrier.csv") // a detached clock: the watchers run on real time
		fs := a.files("acme")
		seen := map[string]int{}
		for _, f := range fs {
			seen[f.Name]++
			if f.Status != store.FileQueued || f.ArchivePath == "" {
				t.Errorf("file %s: status %s, archive %q; want queued and archived", f.Name, f.Status, f.ArchivePath)
			}
			if f.Name == "inbox/barrier.csv" {
				continue
			}
			j, err := a.st.Job(context.Background(), f.JobID)
			if err != nil || j.Total != rows {
				t.Errorf("file %s: job %+v, %v; want %d messages", f.Name, j, err, rows)
			}
		}
		for name, n := range seen {
			if n != 1 {
				t.Errorf("%s recorded %d times, want once", name, n)
			}
		}
		if len(seen) != files+1 {
			t.Errorf("%d files recorded, want %d", len(seen), files+1)
		}
		reports, _ := os.ReadDir(a.home("acme", "reports"))
		for _, r := range reports {
			t.Errorf("report %s written: a file was read twice", r.Name())
		}
		jobs, err := a.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
		if err != nil || len(jobs) != files+1 {
			t.Fatalf("%d jobs (%v), want %d", len(jobs), err, files+1)
		}
	})
}

// A node that dies while it reads a file (here: stalls, without renewing
// its claim) leaves the file to another node, which removes what the
// first left of its ingest and queues the file once. The stalled node,
// back, finds its claim gone and queues nothing.
func TestClaimOfAStoppedNodeIsTakenOver(t *testing.T) {
	onEngines(t, false, func(t *testing.T, open opener) {
		cfg := nodesConfig(t)
		a := newNode(t, cfg, open(t, cfg.DBPath()), "A")
		// A never renews its claim (it does not Run): its lease runs out
		// when B's clock has moved past it, not before.
		a.in.claims.lease = time.Hour
		const rows = 500
		path := a.write("acme", "inbox/left.csv", bigCSV("left", rows))
		old := time.Now().Add(-time.Hour) // B's start takes it at once, not after a quiet period
		os.Chtimes(path, old, old)
		entered, resume := make(chan struct{}), make(chan struct{})
		a.in.ingesting = func(ctx context.Context, it workItem) error {
			close(entered)
			<-resume
			return nil
		}
		var wg sync.WaitGroup
		wg.Go(func() { a.in.process(context.Background(), workItem{partner: "acme", rel: "inbox/left.csv"}) })
		var once sync.Once
		letGo := func() { once.Do(func() { close(resume) }) }
		t.Cleanup(func() { letGo(); wg.Wait() })
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("node A did not start reading the file")
		}
		if c, err := a.st.FileClaimOf(context.Background(), "acme", "inbox/left.csv"); err != nil || c.Node != "A" {
			t.Fatalf("claim while A reads: %+v, %v", c, err)
		}
		// B starts while A's claim is live, after the file was written (so
		// no event of it reaches B: only B's scan and its look at the
		// expired claims can find it). B's start leaves A's ingest alone,
		// and its scan finds the file held by A.
		b := newNode(t, cfg, open(t, cfg.DBPath()), "B")
		b.in.claims.lease = 300 * time.Millisecond
		var mu sync.Mutex
		var ahead time.Duration
		b.in.now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return time.Now().Add(ahead)
		}
		b.runScanned()
		item := workItem{partner: "acme", rel: "inbox/left.csv"}
		waitFor(t, "B's try at the file", 30*time.Second, func() bool { return !b.in.queue.busy(item) })
		if jobs, err := b.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"}); err != nil || len(jobs) != 1 || jobs[0].Status != store.JobIngesting {
			t.Fatalf("jobs while A's claim is live: %+v, %v; want A's one ingesting job", jobs, err)
		}
		if c, err := b.st.FileClaimOf(context.Background(), "acme", "inbox/left.csv"); err != nil || c.Node != "A" {
			t.Fatalf("claim while A's lease runs: %+v, %v", c, err)
		}
		mu.Lock()
		ahead = 2 * time.Hour // A's lease ran out: A is gone
		mu.Unlock()
		b.waitFiles("acme", 1)
		letGo()
		wg.Wait()
		fs := b.files("acme")
		if len(fs) != 1 || fs[0].Status != store.FileQueued {
			t.Fatalf("files = %+v, want one queued file", fs)
		}
		jobs, err := b.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
		if err != nil || len(jobs) != 1 || jobs[0].Total != rows || jobs[0].Status != store.JobQueued {
			t.Fatalf("jobs = %+v, %v; want one queued job of %d messages", jobs, err, rows)
		}
		if n := len(b.messages(jobs[0].ID)); n != rows {
			t.Fatalf("%d messages, want %d", n, rows)
		}
		if _, err := os.Stat(filepath.Join(cfg.PartnerHome("acme"), "inbox", "left.csv")); !os.IsNotExist(err) {
			t.Fatalf("file still in the inbox: %v", err)
		}
		if rep := a.readReport("acme", "left.csv"+errorsSuffix); rep != "" {
			t.Fatalf("the stalled node wrote a report:\n%s", rep)
		}
		if _, err := b.st.FileClaimOf(context.Background(), "acme", "inbox/left.csv"); err == nil {
			t.Fatal("claim left behind")
		}
	})
}

// A node claims a file by its version, not by reading it: a second node
// after the same upload finds it held (nothing to do), while a new upload
// of the name, with new content, while the first node still holds the old
// one, is busy: the second node takes it once the first is done. Each new
// upload keeps the old one's size (and, renamed into place, its time), so
// only a version that sees the change tells the two apart.
func TestNewUploadOfAHeldNameIsBusyNotHeld(t *testing.T) {
	onEngines(t, true, func(t *testing.T, open opener) {
		for _, how := range []string{"renamed into place", "rewritten in place"} {
			t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
				cfg := nodesConfig(t)
				a := newNode(t, cfg, open(t, cfg.DBPath()), "A")
				b := newNode(t, cfg, open(t, cfg.DBPath()), "B")
				ctx := context.Background()
				it := workItem{partner: "acme", rel: "inbox/list.csv"}
				path := a.write("acme", it.rel, bigCSV("old", 100))
				old, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				releaseA, ok := a.in.claim(ctx, a.in.partners["acme"], it, a.in.log)
				if !ok {
					t.Fatal("A could not claim the file")
				}
				deferred := func() bool {
					b.in.claims.mu.Lock()
					defer b.in.claims.mu.Unlock()
					_, ok := b.in.claims.deferred[it]
					return ok
				}
				if _, ok := b.in.claim(ctx, b.in.partners["acme"], it, b.in.log); ok || deferred() {
					t.Fatalf("B on A's upload: claimed %v, deferred %v; want held (neither)", ok, deferred())
				}
				next := bigCSV("new", 100) // same size, other content
				if len(next) != int(old.Size()) {
					t.Fatalf("new upload of %d bytes, old %d: want the same size", len(next), old.Size())
				}
				switch how {
				case "renamed into place":
					tmp := path + ".part"
					if err := os.WriteFile(tmp, next, 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Chtimes(tmp, old.ModTime(), old.ModTime()); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(tmp, path); err != nil {
						t.Fatal(err)
					}
				default:
					if err := os.WriteFile(path, next, 0o644); err != nil {
						t.Fatal(err)
					}
					// A time the old upload's cannot be, even on a coarse clock.
					later := old.ModTime().Add(time.Second)
					if err := os.Chtimes(path, later, later); err != nil {
						t.Fatal(err)
					}
				}
				if _, ok := b.in.claim(ctx, b.in.partners["acme"], it, b.in.log); ok || !deferred() {
					t.Fatalf("B on a new upload of A's name: claimed %v, deferred %v; want busy (deferred)", ok, deferred())
				}
				if c, err := b.st.FileClaimOf(ctx, "acme", it.rel); err != nil || c.Node != "A" {
					t.Fatalf("claim while A holds it: %+v, %v", c, err)
				}
				releaseA()
				releaseB, ok := b.in.claim(ctx, b.in.partners["acme"], it, b.in.log)
				if !ok {
					t.Fatal("B could not claim the new upload once A was done")
				}
				releaseB()
			})
		}
	})
}
