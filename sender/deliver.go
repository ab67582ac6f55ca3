package sender

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dropgate/dropgate/store"
)

// deliver runs one claimed message through the channel and says what became
// of it. ctx stops waiting (the message is released untried); call bounds
// the provider call itself (its parent, the deliveries' context, lets a
// stop finish it within its grace); drv is the worker's driver (its
// session, if the channel's driver has them).
func (ch *channel) deliver(ctx context.Context, call *callTimeout, drv Driver, c *store.Claim) store.Outcome {
	clk := ch.s.clock
	out := store.Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt}
	release := func() store.Outcome {
		out.Kind, out.At = store.OutcomeReleased, clk.Now()
		return out
	}
	if expiry := ch.expiry(c); !clk.Now().Before(expiry) {
		out.Kind, out.At = store.OutcomeExpired, clk.Now()
		out.Error = fmt.Sprintf("expired: not sent within the max age of %s (queued %s)",
			ch.maxAge, c.AgeFrom.UTC().Format(time.RFC3339))
		return out
	}
	if ch.s.suppress != nil {
		sup, err := ch.s.suppress(ctx, c.Partner, c.Channel, c.Recipient)
		if err != nil && ctx.Err() != nil {
			return release()
		}
		if err != nil {
			return ch.failed(c, transient(fmt.Errorf("cannot check the suppression list: %w", err)))
		}
		if sup {
			out.Kind, out.At, out.Error = store.OutcomeSuppressed, clk.Now(), "suppressed: the recipient is on the suppression list"
			return out
		}
	}
	if err := ch.waitTurn(ctx); err != nil {
		return release()
	}
	// Paused or cancelled since the claim: back to the queue (which, for a
	// cancelled job, cancels it) without an attempt.
	if !ch.s.gate.open(ctx, c.JobID) {
		return release()
	}
	// A message whose lease ran out while it waited may already be queued
	// again and claimed by another worker: leave it to that claim.
	if c.LeaseUntil.Sub(clk.Now()) < min(ch.timeout, ch.s.cfg.Sender.Lease.D()/4) {
		return release()
	}
	sctx := call.begin(ch.timeout)
	sendStart := time.Now()
	id, err := drv.Send(sctx, &c.Message)
	call.end()
	ch.s.observeProvider(ch.cfg.Name, time.Since(sendStart), err)
	if err == nil {
		out.Kind, out.At, out.ProviderID = store.OutcomeSent, clk.Now(), id
		return out
	}
	if call.parent.Err() != nil {
		// Abandoned at shutdown: the provider may or may not have it; the
		// message goes out again later under the same idempotency key.
		return release()
	}
	return ch.failed(c, err)
}

// failed turns a delivery error into a retry or a final failure, and slows
// the channel down when the provider throttles it. A failure about this
// message alone (greylisting, one bad recipient) changes nothing for the
// others.
func (ch *channel) failed(c *store.Claim, err error) store.Outcome {
	now := ch.s.clock.Now()
	out := store.Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt, At: now, Error: errorText(err)}
	de := classify(err)
	if de.Throttle {
		ch.throttle.signal(now, out.Error)
	}
	switch {
	case de.Permanent:
		out.Kind = store.OutcomeFailed
		return out
	case c.Attempt >= ch.maxAttempts:
		out.Kind = store.OutcomeFailed
		out.Error = fmt.Sprintf("gave up after %d attempts: %s", c.Attempt, out.Error)
		return out
	}
	next := now.Add(max(ch.s.backoff(c.Attempt), de.RetryAfter))
	if !next.Before(ch.expiry(c)) {
		out.Kind = store.OutcomeFailed
		out.Error = fmt.Sprintf("gave up: the next attempt would pass the max age of %s: %s", ch.maxAge, out.Error)
		return out
	}
	out.Kind, out.NextAttemptAt = store.OutcomeRetry, next
	return out
}

// expiry is when the message stops being worth sending: its own expiry if
// the job set one, else the channel's max age after it was queued.
func (ch *channel) expiry(c *store.Claim) time.Time {
	if !c.ExpiresAt.IsZero() {
		return c.ExpiresAt
	}
	return c.AgeFrom.Add(ch.maxAge)
}

// backoff is the wait before the attempt after attempt n (1-based):
// base×2^(n-1), capped, with "equal jitter" (half fixed, half random) so
// retries of one burst spread out without collapsing to zero.
func (s *Sender) backoff(n int) time.Duration {
	d := s.retryCap
	if n-1 < 40 {
		d = min(s.retryBase<<(n-1), s.retryCap)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// errorText is the message kept in last_error: the provider's words without
// the classification prefix.
func errorText(err error) string {
	var de *DeliveryError
	if errors.As(err, &de) && de.Err != nil {
		return de.Err.Error()
	}
	return err.Error()
}
