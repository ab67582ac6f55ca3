package sender

import (
	"context"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

var _ Driver = (*fakeDriver)(nil)

// fakeDriver records every delivery in order. hold, when set, is called
// with the 1-based number of each call before it is recorded and may block
// (to freeze the sender at a chosen point); fail may refuse a message; now,
// when set, times the sends (the sender's fake clock).
type fakeDriver struct {
	mu   sync.Mutex
	sent []fakeSend
	hold func(ctx context.Context, n int)
	fail func(m *store.Message) error
	now  func() time.Time
	n    int
}

type fakeSend struct {
	ID      int64
	Key     string
	JobID   int64
	Partner string
	At      time.Time
}

func (d *fakeDriver) Send(ctx context.Context, m *store.Message) (string, error) {
	d.mu.Lock()
	d.n++
	n, hold, fail := d.n, d.hold, d.fail
	d.mu.Unlock()
	if hold != nil {
		hold(ctx, n)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if fail != nil {
		if err := fail(m); err != nil {
			return "", err
		}
	}
	d.mu.Lock()
	at := time.Now()
	if d.now != nil {
		at = d.now()
	}
	d.sent = append(d.sent, fakeSend{ID: m.ID, Key: m.Key, JobID: m.JobID, Partner: m.Partner, At: at})
	d.mu.Unlock()
	return "fake-" + m.Key, nil
}

func (d *fakeDriver) Sent() []fakeSend {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]fakeSend(nil), d.sent...)
}

func (d *fakeDriver) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sent)
}

// useDriver replaces the driver of a channel built by New.
func useDriver(s *Sender, channel string, d Driver) {
	for _, ch := range s.channels {
		if ch.cfg.Name == channel {
			ch.driver = d
			return
		}
	}
	panic("no channel " + channel)
}

// gateAt returns a hold function that blocks every call from the n-th on
// until release is closed (or the delivery is cancelled).
func gateAt(n int, release <-chan struct{}) func(context.Context, int) {
	return func(ctx context.Context, i int) {
		if i >= n {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
}
