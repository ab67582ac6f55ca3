package store

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// writeFileJob writes and commits a file job of n sms messages shaped like
// a real file's (the ingest benchmark's rows).
func writeFileJob(tb testing.TB, s *Store, n int) {
	tb.Helper()
	ctx := context.Background()
	fileID, err := s.CreateFile(ctx, File{Partner: "acme", Name: "inbox/orders.csv", Size: 1, SHA256: fmt.Sprint(time.Now().UnixNano())})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "acme", fileID, "inbox/orders.csv", 5000)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		if err := w.Add(Message{Channel: "sms", Line: i + 2, Ref: fmt.Sprintf("R%07d", i), Recipient: fmt.Sprintf("+3519%08d", i),
			Body: fmt.Sprintf("Hi Name%d, your order O-%07d ships today.", i, i), Status: MsgQueued, NextAttemptAt: now}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Commit(ctx, n, nil); err != nil {
		tb.Fatal(err)
	}
}

func TestFileJobLeavesTheWALTruncated(t *testing.T) {
	skipOnPostgres(t, "the WAL file is SQLite's")
	s := openTest(t)
	writeFileJob(t, s, 50_000)
	if n := s.WALSize(); n != 0 {
		t.Errorf("WAL is %d bytes after the job was queued, want 0 (truncated)", n)
	}
}

func TestFileJobOnANearlyFullDiskKeepsTheWALSmall(t *testing.T) {
	skipOnPostgres(t, "the WAL file is SQLite's")
	s := openTest(t)
	s.SetFreeSpace(func() uint64 { return 100 << 20 }) // too little for a 256 MB WAL
	var peak int64
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // sampled, not timed: the assert is on sizes
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			peak = max(peak, s.WALSize())
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	writeFileJob(t, s, 250_000)
	close(stop)
	<-done
	// With the default threshold (1000 pages) the WAL is reset after each
	// checkpoint; a reader mid-checkpoint can let it run on a little.
	if peak > 16<<20 {
		t.Errorf("WAL peaked at %d bytes on a nearly full disk, want it bounded by the default checkpoint", peak)
	}
}

func TestIsDiskFullKnowsSQLiteAndENOSPC(t *testing.T) {
	if !IsDiskFull(fmt.Errorf("cannot queue: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})) {
		t.Error("ENOSPC not recognised")
	}
	if IsDiskFull(fmt.Errorf("some other problem")) || IsDiskFull(nil) {
		t.Error("an unrelated error counted as a full disk")
	}
}

func TestIsDiskFullKnowsPostgreSQLsDiskFull(t *testing.T) {
	if !IsDiskFull(fmt.Errorf("cannot insert messages: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"})) {
		t.Error("SQLSTATE 53100 not recognised")
	}
	if IsDiskFull(&pgconn.PgError{Code: "23505"}) {
		t.Error("a unique violation counted as a full disk")
	}
}
