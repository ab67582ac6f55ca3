// Package servertest holds what the file servers' tests share: a log they
// can read, outside clients that CI must have, and waiting on a condition
// instead of sleeping.
package servertest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Logs is a slog destination a test can read while the server writes. With
// -v it also writes to stderr.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger returns a debug-level text logger writing to l.
func (l *Logs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Logger returns a logger for a server under test: to stderr with -v,
// discarded otherwise.
func Logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// RequireTool returns an outside client's path. A missing one skips the
// test, except in CI (CI=true), where it must be installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// WaitFor polls cond until it holds, failing the test after a deadline
// generous enough for a loaded machine.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs a server's Run on its own goroutine until the test ends. stop
// cancels it and returns Run's error; it may be called more than once
// (the cleanup calls it too).
func Run(t testing.TB, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// LongGrace is a shutdown grace far longer than any stop in the shutdown
// tests may take. Whether a stop waited for it is read from the server's
// own count of sessions closed at the grace's end (ClosedAtGraceEnd), not
// from a clock: a regression costs the test one minute and then fails it.
// HangGuard only stops a test that would otherwise hang.
const (
	LongGrace = time.Minute
	HangGuard = 3 * LongGrace
)

// ClosedAtGraceEnd returns the server's count of sessions it closed when
// the shutdown grace ran out, from its "sessions closed at stop" log line.
func ClosedAtGraceEnd(t testing.TB, logs *Logs) string {
	t.Helper()
	m := regexp.MustCompile(`sessions closed at stop.* at_grace_end=(\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no \"sessions closed at stop\" line in the server's log:\n%s", logs.String())
	}
	return m[1]
}
