package sender

import (
	"time"

	"github.com/dropgate/dropgate/store"
)

// Observer is told about deliveries, for metrics. Its methods are called
// from the channels' workers and must not block.
type Observer interface {
	// ProviderAnswered is called after each provider call with how long
	// the provider took and its error (nil: accepted).
	ProviderAnswered(channel string, took time.Duration, err error)
	// Delivered is called with each claimed message's outcome; c's
	// AgeFrom is when it was queued.
	Delivered(channel string, c *store.Claim, out store.Outcome)
}

func (s *Sender) observeProvider(channel string, took time.Duration, err error) {
	if s.observer != nil {
		s.observer.ProviderAnswered(channel, took, err)
	}
}

// observed tells the observer of an outcome and returns it.
func (s *Sender) observed(channel string, c *store.Claim, out store.Outcome) store.Outcome {
	if s.observer != nil {
		s.observer.Delivered(channel, c, out)
	}
	return out
}
