package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dropgate/dropgate/store"
)

// Driver delivers one message through one channel. Send returns the
// provider's id for the message when the provider accepted it. A failure is
// transient unless it is (or wraps) a *DeliveryError with Permanent set.
// Send must honour ctx: the sender cancels it when a stop's grace runs out.
type Driver interface {
	Send(ctx context.Context, m *store.Message) (providerID string, err error)
}

// Prober is implemented by drivers that can check, at start, that their
// server answers, so a misconfiguration shows in the log before the first
// message fails.
type Prober interface {
	Probe(ctx context.Context) error
}

// DeliveryError classifies a failed delivery.
//
// Most failures are about one message (a greylisting SMTP 451, a full
// mailbox, an HTTP 500): that message is retried alone, with backoff, and
// the channel goes on with the others. Only a provider's throttle signal is
// about the channel, and slows all of it down for a while.
type DeliveryError struct {
	// Permanent failures are not retried: the message fails at once.
	Permanent bool
	// Throttle says the provider asks the whole channel to slow down
	// (SMTP 421 or 454, a 4.7.x reply about rate, HTTP 429, 503 with
	// Retry-After): the channel's rate is cut, then recovers.
	Throttle bool
	// RetryAfter, when positive, is the earliest the provider wants this
	// message again (HTTP Retry-After): a floor under its backoff.
	RetryAfter time.Duration
	// Err is the provider's answer or the network error.
	Err error
}

// Error says whether the failure is transient or permanent, then why.
func (e *DeliveryError) Error() string {
	kind := "transient"
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("%s: %v", kind, e.Err)
}

// Unwrap returns the underlying error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// permanent wraps err as a failure that must not be retried.
func permanent(err error) error { return &DeliveryError{Permanent: true, Err: err} }

// transient wraps err as a failure worth retrying.
func transient(err error) error { return &DeliveryError{Err: err} }

// classify returns how err should be handled; a plain error is transient.
func classify(err error) DeliveryError {
	var de *DeliveryError
	if errors.As(err, &de) {
		return *de
	}
	return DeliveryError{Err: err}
}
