package admin

import (
	"context"
	"iter"
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
	// settled holds each channel's cached minutes, oldest first, all
	// before from. A page shares these slices read-only: they are only
	// ever re-sliced and appended to (past every length handed out).
	settled map[string][]store.ChannelMinute
	from    time.Time // the first minute not cached; zero before the first read
}

// minuteSeries is one channel's minutes for a page: the cached settled ones
// and the recent ones read for it.
type minuteSeries struct{ settled, recent []store.ChannelMinute }

// all yields the series' minutes, oldest first.
func (m minuteSeries) all() iter.Seq[store.ChannelMinute] {
	return func(yield func(store.ChannelMinute) bool) {
		for _, part := range [2][]store.ChannelMinute{m.settled, m.recent} {
			for _, c := range part {
				if !yield(c) {
					return
				}
			}
		}
	}
}

// since returns, per channel, the tallies of minutes at or after since,
// reading from the store only those not cached yet and the two most
// recent.
func (c *minuteCache) since(ctx context.Context, st *store.Store, channels []string, since, now time.Time) (map[string]minuteSeries, error) {
	since = since.Truncate(time.Minute)
	settled := now.Truncate(time.Minute).Add(-time.Minute) // this minute and the one before may still change
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.from.IsZero() || c.from.Before(since) || settled.Before(c.from) {
		c.settled, c.from = map[string][]store.ChannelMinute{}, since // first page, a long pause, or the clock went back
	}
	fresh, err := st.ChannelMinutes(ctx, channels, c.from)
	if err != nil {
		return nil, err
	}
	out := make(map[string]minuteSeries, len(channels))
	for _, m := range fresh { // newer than every cached minute, by channel then minute
		if m.Minute.Before(settled) {
			c.settled[m.Channel] = append(c.settled[m.Channel], m)
		} else {
			sr := out[m.Channel]
			sr.recent = append(sr.recent, m)
			out[m.Channel] = sr
		}
	}
	c.from = settled
	for ch, rows := range c.settled {
		i := 0
		for i < len(rows) && rows[i].Minute.Before(since) {
			i++
		}
		c.settled[ch] = rows[i:]
		sr := out[ch]
		sr.settled = rows[i:]
		out[ch] = sr
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
