package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

func TestStartupRemovesIngestInterruptedByCrashAndReadsFileAgain(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	ctx := context.Background()
	path := e.write("acme", "inbox/welcome/crash.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n912345679,Bob,2\n"))
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)

	// What a crash mid-file leaves: a received file and an ingesting job
	// with some of its messages.
	fileID, err := e.st.CreateFile(ctx, store.File{Partner: "acme", Name: "inbox/welcome/crash.csv", SHA256: "x"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.st.BeginFileJob(ctx, "acme", fileID, "inbox/welcome/crash.csv", 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(store.Message{Partner: "acme", Channel: "sms", Line: 2, Recipient: "+351912345678", Body: "partial"})
	waitFor(t, "partial message written", 5*time.Second, func() bool {
		c, _ := e.st.JobCounts(ctx, w.JobID())
		return c[store.MsgQueued] == 1
	})

	e.run()
	fs := e.waitFiles("acme", 1)
	if len(fs) != 1 || fs[0].Status != store.FileQueued || fs[0].RowsTotal != 2 {
		t.Fatalf("files = %+v, want the file read again, once", fs)
	}
	jobs, err := e.st.ListJobs(ctx, store.JobFilter{Partner: "acme"})
	if err != nil || len(jobs) != 1 || jobs[0].Total != 2 || jobs[0].Status != store.JobQueued {
		t.Fatalf("jobs = %+v, %v; want only the new job", jobs, err)
	}
}

func TestShutdownMidFileLeavesNoPartialEffects(t *testing.T) {
	e := newTestEnv(t, nil)
	e.cfg.Ingest.BatchSize = 500
	e.template("acme", "welcome", welcomeSMS)
	var buf bytes.Buffer
	buf.WriteString("phone,first_name,order_id\n")
	const rows = 20_000
	for i := range rows {
		fmt.Fprintf(&buf, "91%07d,Ana,%d\n", i, i)
	}
	e.write("acme", "inbox/welcome/big.csv", buf.Bytes())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.in.Run(ctx) }()
	e.in.FileComplete("acme", "inbox/welcome/big.csv")
	waitFor(t, "ingest to start", 20*time.Second, func() bool {
		jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
		return len(jobs) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v, want nil on cancel", err)
	}

	// Either the file finished before the cancel took effect, or nothing of
	// it remains and it waits in the inbox.
	fs := e.files("acme")
	jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
	_, statErr := os.Stat(e.home("acme", "inbox/welcome/big.csv"))
	finished := len(fs) == 1 && fs[0].Status == store.FileQueued && len(jobs) == 1 && jobs[0].Total == rows
	untouched := len(fs) == 0 && len(jobs) == 0 && statErr == nil
	t.Logf("at shutdown: finished=%v untouched=%v", finished, untouched)
	if !finished && !untouched {
		t.Fatalf("partial effects after shutdown: files %+v, jobs %+v, file in inbox: %v", fs, jobs, statErr == nil)
	}

	// The next start reads it (again, or not, never twice).
	in2, err := New(Options{Config: e.cfg, Store: e.st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- in2.Run(ctx2) }()
	defer func() { cancel2(); <-done2 }()
	fs = e.waitFiles("acme", 1)
	jobs, _ = e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
	if len(fs) != 1 || len(jobs) != 1 || jobs[0].Total != rows {
		t.Fatalf("after restart: files %+v, jobs %+v; want one job of %d rows", fs, jobs, rows)
	}
}
