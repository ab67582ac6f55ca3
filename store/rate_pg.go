package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// A rate-limited channel's configured rate is the total of every node's
// sends. On PostgreSQL each channel has a token bucket in rate_buckets
// that every node takes tokens from: the bucket refills at the rate up to
// the burst, by the database's clock (nodes' clocks may differ), and a row
// lock serialises the takes, so the tokens handed out over any span are at
// most burst + rate × span, however many nodes ask. A node takes a few
// tokens at a time (a fiftieth of a second's worth) and spends them
// locally, which adds at most that many per node to the bound.
//
// The alternative, each node limiting itself to rate / live nodes, needs
// no round trip but under-sends whenever some nodes have nothing to send,
// and over-sends while nodes join until each has seen the new count.

// takeTokensSQL refills the channel's bucket to now and takes up to ?4 of
// its whole tokens, returning how many it took and what was there. The
// bucket's time never goes back (a take that read the clock before
// waiting for the lock must not re-mint the span since a later take).
const takeTokensSQL = `WITH b AS (
		SELECT r.channel, r.at, t.now, LEAST(CAST(?1 AS DOUBLE PRECISION),
			r.tokens + GREATEST(0, t.now - r.at) * CAST(?2 AS DOUBLE PRECISION) / 1000.0) AS avail
		FROM rate_buckets r, (SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS now) t
		WHERE r.channel = ?3 FOR UPDATE OF r)
	UPDATE rate_buckets SET tokens = b.avail - LEAST(CAST(?4 AS DOUBLE PRECISION), FLOOR(b.avail)), at = GREATEST(b.at, b.now)
	FROM b WHERE rate_buckets.channel = b.channel
	RETURNING CAST(LEAST(CAST(?4 AS DOUBLE PRECISION), FLOOR(b.avail)) AS BIGINT), b.avail`

// TakeRateTokens takes up to want tokens from channel's shared bucket of
// perSecond and burst (PostgreSQL; see above). It returns how many it got
// and, when none, how long until one is due.
func (s *Store) TakeRateTokens(ctx context.Context, channel string, perSecond float64, burst, want int) (int, time.Duration, error) {
	if !s.pg {
		return 0, 0, errors.New("shared rate limits need PostgreSQL")
	}
	burst = max(burst, 1)
	for range 2 {
		var got int
		var avail float64
		err := s.reader.QueryRowContext(ctx, takeTokensSQL, float64(burst), perSecond, channel, float64(want)).Scan(&got, &avail)
		if errors.Is(err, sql.ErrNoRows) {
			// The channel's first take: a full bucket.
			if _, err := s.reader.ExecContext(ctx, `INSERT INTO rate_buckets (channel, tokens, at)
				VALUES (?, ?, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)) ON CONFLICT (channel) DO NOTHING`,
				channel, float64(burst)); err != nil {
				return 0, 0, fmt.Errorf("cannot create the rate bucket of channel %s: %w", channel, err)
			}
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("cannot take tokens of channel %s: %w", channel, err)
		}
		if got > 0 {
			return got, 0, nil
		}
		wait := time.Duration(math.Ceil((1 - avail) / perSecond * float64(time.Second)))
		return 0, max(wait, time.Millisecond), nil
	}
	return 0, 0, fmt.Errorf("cannot take tokens of channel %s: no bucket", channel)
}
