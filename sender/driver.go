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
type DeliveryError struct {
	// Permanent failures are not retried: the message fails at once.
	Permanent bool
	// RetryAfter, when positive, is how long the provider asked the whole
	// channel to wait (HTTP 429 Retry-After).
	RetryAfter time.Duration
	// SlowDown asks the channel to back off briefly without a stated time
	// (SMTP 421, 451, 454: the server is busy or throttling).
	SlowDown bool
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
