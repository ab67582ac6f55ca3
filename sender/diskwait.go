package sender

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dropgate/dropgate/store"
)

// recoverRetry is how often the start-up recovery is tried again while the
// disk is full.
const recoverRetry = time.Second

// recoverWhenSpace runs the start-up recovery (delivery log replay, expired
// leases) and, while it fails on a full disk, tries again until it works or
// ctx ends, instead of stopping the daemon: nothing is delivered before it
// has run (the log's outcomes must be stored first), but the rest of
// dropgate serves meanwhile. Any other failure is returned.
func (s *Sender) recoverWhenSpace(ctx context.Context, j *journal) error {
	for warned := false; ; warned = true {
		err := s.recover(ctx, j)
		if err == nil || !store.IsDiskFull(err) || ctx.Err() != nil {
			s.waiting.Store(nil)
			if err == nil && warned {
				s.log.Info("start-up recovery done now that space returned; delivering")
			}
			return err
		}
		why := fmt.Sprintf("the sender waits for storage space to settle what the last run left (%v)", err)
		s.waiting.Store(&why)
		if !warned {
			s.log.Warn("cannot settle the last run's deliveries: the disk is full; nothing is sent until space returns, retried every second", "err", err)
		}
		select {
		case <-ctx.Done():
			s.waiting.Store(nil)
			return ctx.Err()
		case <-time.After(recoverRetry):
		}
	}
}

// Degraded says why the sender is not delivering yet, or "".
func (s *Sender) Degraded() string {
	if why := s.waiting.Load(); why != nil {
		return *why
	}
	return ""
}

// waitingReason is set while the start-up recovery waits for space.
type waitingReason = atomic.Pointer[string]
