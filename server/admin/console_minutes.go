package admin

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// minuteCache keeps the overview's day of per-minute tallies in memory, so
// that a page reads only the minutes that may still change instead of the
// whole day (2,880 rows for two channels, most of the overview's cost).
// channel_minutes rows are written at the minute an outcome is stored
// (migration 0012's trigger, unixepoch()/60), so a minute that ended more
// than one minute ago no longer changes: the last two minutes are read
// again on every page, the rest comes from here.
type minuteCache struct {
	mu sync.Mutex
	// rows holds every cached minute, in (channel, minute) order as read,
	// up to but not including from.
	rows []store.ChannelMinute
	from time.Time // the first minute not cached; zero before the first read
}

// since returns the channels' tallies of minutes at or after since,
// reading from the store only those not cached yet and the two most
// recent.
func (c *minuteCache) since(ctx context.Context, st *store.Store, channels []string, since, now time.Time) ([]store.ChannelMinute, error) {
	since = since.Truncate(time.Minute)
	settled := now.Truncate(time.Minute).Add(-time.Minute) // this minute and the one before may still change
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.from.IsZero() || c.from.Before(since) || settled.Before(c.from) {
		c.rows, c.from = nil, since // first page, a long pause, or the clock went back
	}
	fresh, err := st.ChannelMinutes(ctx, channels, c.from)
	if err != nil {
		return nil, err
	}
	// Keep what is settled and still in the window; the minutes after
	// that are this page's only.
	kept := make([]store.ChannelMinute, 0, len(c.rows)+len(fresh))
	for _, m := range c.rows {
		if !m.Minute.Before(since) {
			kept = append(kept, m)
		}
	}
	for _, m := range fresh {
		if m.Minute.Before(settled) {
			kept = append(kept, m)
		}
	}
	// A later page builds a new slice: the caller may keep this one.
	c.rows, c.from = kept, settled
	out := slices.Clip(kept) // appending copies
	for _, m := range fresh {
		if !m.Minute.Before(settled) {
			out = append(out, m)
		}
	}
	return out, nil
}

// channelNames are the configured channels, in the config's order.
func (s *Server) channelNames() []string {
	names := make([]string, len(s.opts.Config.Channels))
	for i, ch := range s.opts.Config.Channels {
		names[i] = ch.Name
	}
	return names
}
