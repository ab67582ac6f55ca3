package sessions_test

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/server/sessions"
)

// conn stands for a session's connection: closing it ends the session, as
// a server's serving goroutine would on its read error.
type conn struct {
	closed atomic.Bool
	sess   *sessions.Session
}

func add(r *sessions.Registry) *conn {
	c := &conn{}
	added := make(chan struct{})
	c.sess = r.Add(func() error {
		<-added // a session added during the stop is closed at once
		c.closed.Store(true)
		c.sess.Remove()
		return nil
	})
	close(added)
	return c
}

func drain(r *sessions.Registry, grace time.Duration) chan struct{} {
	done := make(chan struct{})
	go func() { r.Drain(grace); close(done) }()
	return done
}

func waitClosed(t *testing.T, done chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("Drain still running after %v", within)
	}
}

func TestDrainClosesIdleSessionsAndRefusesNewTransfers(t *testing.T) {
	r := sessions.New(slog.New(slog.DiscardHandler))
	a, b := add(r), add(r)
	waitClosed(t, drain(r, time.Minute), 20*time.Second)
	if !a.closed.Load() || !b.closed.Load() {
		t.Error("idle sessions not closed")
	}
	if err := a.sess.BeginTransfer(); !errors.Is(err, sessions.ErrShuttingDown) {
		t.Errorf("transfer after stop: %v; want ErrShuttingDown", err)
	}
	late := add(r)
	// Closed on its own goroutine: wait for it, however busy the machine.
	for deadline := time.Now().Add(20 * time.Second); !late.closed.Load() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !late.closed.Load() {
		t.Error("session added after the stop not closed")
	}
}

func TestSessionMidTransferIsClosedAfterTheReplyToItsEnd(t *testing.T) {
	r := sessions.New(slog.New(slog.DiscardHandler))
	busy, idle := add(r), add(r)
	if err := busy.sess.BeginTransfer(); err != nil {
		t.Fatal(err)
	}
	done := drain(r, time.Minute)
	for !idle.closed.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	busy.sess.Replied() // a reply during the transfer (SFTP write acks)
	if busy.closed.Load() {
		t.Fatal("session closed mid-transfer")
	}
	busy.sess.EndTransfer()
	time.Sleep(50 * time.Millisecond)
	if busy.closed.Load() {
		t.Fatal("session closed before the reply to its transfer's end")
	}
	busy.sess.Replied()
	waitClosed(t, done, 20*time.Second)
	if !busy.closed.Load() {
		t.Error("session not closed after its transfer ended")
	}
}

func TestDrainClosesSessionsStillTransferringAtGraceEnd(t *testing.T) {
	r := sessions.New(slog.New(slog.DiscardHandler))
	busy := add(r)
	if err := busy.sess.BeginTransfer(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, drain(r, 50*time.Millisecond), 20*time.Second)
	if !busy.closed.Load() {
		t.Error("session still transferring at grace end not closed")
	}
}
