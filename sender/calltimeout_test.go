package sender

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCallTimeoutCancelsOnlyTheCallPastItsDeadline(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	defer stop()
	call := newCallTimeout(parent)
	defer call.close()

	// A call that outlives its timeout ends with DeadlineExceeded as the
	// cause, which net/http and the SMTP driver report.
	ctx := call.begin(10 * time.Millisecond)
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the call's context did not end after its timeout")
	}
	if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Errorf("cause = %v, want context.DeadlineExceeded", context.Cause(ctx))
	}
	call.end()

	// The next call gets a live context, and calls that end in time keep
	// theirs.
	next := call.begin(time.Hour)
	if next == ctx || next.Err() != nil {
		t.Fatalf("the call after a timeout got the ended context (err %v)", next.Err())
	}
	call.end()
	if again := call.begin(time.Hour); again != next || again.Err() != nil {
		t.Errorf("a call after one that ended in time got a new or ended context (err %v)", again.Err())
	}
	// A late run of the timer (armed for a call that ended just in time)
	// must not cancel the call in progress.
	call.fire()
	if next.Err() != nil {
		t.Errorf("a late timer cancelled the call in progress: %v", next.Err())
	}
	call.end()

	// The parent ending (a stop's grace ran out) ends the call.
	ctx = call.begin(time.Hour)
	stop()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("after the parent ended, err = %v", ctx.Err())
	}
	call.end()
}
