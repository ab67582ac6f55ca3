package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A second `serve` on a data_dir in use (a manual start beside the
// service) must stop before it touches anything: its start would have
// emptied the uploads in progress of the first daemon's partners.
func TestASecondDaemonOnTheSameDataDirStopsAndLeavesTheFirstsUploadAlone(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	f := &cutFixture{d: startDaemon(t, cfg)}
	c := ftpLogin(t, f.d)

	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() { stored <- c.Stor("inbox/during.csv", pr) }()
	if _, err := io.WriteString(pw, "phone,message\n912345678,hello\n"); err != nil {
		t.Fatal(err)
	}
	f.waitPartial(t, 1)

	// Same data_dir, its own listeners (every port is :0): nothing but the
	// lock stops it.
	second := *cfg
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, &second, logger, func(addrs) {
			t.Error("a second daemon started on a data_dir in use")
			cancel()
		})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "in use by another dropgate") ||
			!strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
			t.Errorf("second serve = %v, want the data_dir in use by this process", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the second serve neither failed nor started")
	}

	// The first daemon's upload goes on and lands whole.
	if _, err := io.WriteString(pw, "912345679,hi\n"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-stored; err != nil {
		t.Fatalf("the upload in progress failed: %v", err)
	}
	if got := f.fileStatus(t, "inbox/during.csv", "queued"); got.Rows != 2 {
		t.Errorf("the upload was queued as %+v, want its 2 rows", got)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, lockFileName)); err != nil {
		t.Errorf("lock file: %v", err)
	}
}

// A daemon killed with -9 leaves its lock file but not its lock: the next
// start takes the data_dir.
func TestALockLeftByADeadProcessIsTakenAgain(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, lockFileName), []byte("999999\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("a lock file without a holder: %v", err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second lock = %v, want it held by this process", err)
	}
	if err := l.release(); err != nil {
		t.Fatal(err)
	}
	l, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l.release()
}
