package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// fakeSpace is an injected watermark the test turns low and back.
type fakeSpace struct {
	mu     sync.Mutex
	low    bool   // what Low answers (the cached reading)
	lowNow bool   // what LowNow answers (a fresh reading)
	free   uint64 // what FreeBytes answers
}

func (f *fakeSpace) Low() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.low, "the server is out of storage space"
}

func (f *fakeSpace) LowNow() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lowNow
}

func (f *fakeSpace) FreeBytes() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.free
}

func (f *fakeSpace) set(low, lowNow bool, free uint64) {
	f.mu.Lock()
	f.low, f.lowNow, f.free = low, lowNow, free
	f.mu.Unlock()
}

var _ Space = (*fakeSpace)(nil)

func (e *testEnv) jobs() []store.Job {
	e.t.Helper()
	jobs, err := e.st.ListJobs(context.Background(), store.JobFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return jobs
}

func TestFilesWaitInTheInboxWhileStorageIsLow(t *testing.T) {
	e := newTestEnv(t, nil)
	sp := &fakeSpace{low: true, lowNow: true, free: 1 << 20}
	e.in.pause.space = sp
	e.template("acme", "welcome", "channel: email\n---\nHi {{.name}}\n")
	e.run()
	e.write("acme", "inbox/welcome/a.csv", []byte("email,name\na@example.com,A\n"))
	// The watcher has queued it (past the quiet period) but nothing reads it.
	waitFor(t, "the file to be queued for ingest", 10*time.Second, func() bool {
		return e.in.queue.busy(workItem{partner: "acme", rel: "inbox/welcome/a.csv"})
	})
	if jobs := e.jobs(); len(jobs) != 0 {
		t.Fatalf("a file was ingested while storage was low: %+v", jobs)
	}
	sp.set(false, false, 100<<20)
	waitFor(t, "the file to be ingested once space returned", 10*time.Second, func() bool { return len(e.jobs()) == 1 })
}

func TestFileThatRunsOutOfSpacePausesAndIsReadOnceWhenSpaceReturns(t *testing.T) {
	e := newTestEnv(t, nil)
	sp := &fakeSpace{free: 10 << 20}
	e.in.pause.space = sp
	e.template("acme", "welcome", "channel: email\n---\nHi {{.name}}, this is a message long enough to take some room.\n")
	var b strings.Builder
	b.WriteString("email,name\n")
	const rows = 30_000
	for i := range rows {
		fmt.Fprintf(&b, "u%d@example.com,N%d\n", i, i)
	}
	// Free space falls below the watermark while the file is read.
	sp.set(false, true, 10<<20)
	e.run()
	e.write("acme", "inbox/welcome/big.csv", []byte(b.String()))
	waitFor(t, "the waiting report", 30*time.Second, func() bool { return e.readReport("acme", "big.csv.waiting.txt") != "" })
	if r := e.readReport("acme", "big.csv.waiting.txt"); !strings.Contains(r, "taken automatically") {
		t.Errorf("waiting report = %q", r)
	}
	if jobs := e.jobs(); len(jobs) != 0 {
		t.Errorf("the paused file's partial job is still there: %+v", jobs)
	}
	for _, f := range e.files("acme") {
		if f.Name == "inbox/welcome/big.csv" {
			t.Errorf("the paused file has a record: %+v", f)
		}
	}
	if e.readReport("acme", "big.csv.errors.csv") != "" {
		t.Error("the paused file was reported as rejected")
	}
	if e.in.Degraded() == "" {
		t.Error("Degraded is empty while a file waits for space")
	}
	// Space comes back (more than the file had): read once, queued whole.
	sp.set(false, false, 50<<20)
	waitFor(t, "the file to be queued", 120*time.Second, func() bool {
		jobs := e.jobs()
		return len(jobs) == 1 && jobs[0].Status != store.JobIngesting
	})
	if jobs := e.jobs(); jobs[0].Total != rows {
		t.Errorf("job = %+v, want %d messages", jobs[0], rows)
	}
	waitFor(t, "the waiting report to go", 10*time.Second, func() bool { return e.readReport("acme", "big.csv.waiting.txt") == "" })
	if e.in.Degraded() != "" {
		t.Errorf("Degraded = %q after the file was taken", e.in.Degraded())
	}
}
