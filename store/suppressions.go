package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Suppression is a recipient a partner must not message again: on Channel,
// or on every channel when Channel is "".
type Suppression struct {
	ID        int64     `json:"id"`
	Partner   string    `json:"partner"`
	Channel   string    `json:"channel"`
	Recipient string    `json:"recipient"`
	Reason    string    `json:"reason,omitempty"`
	Source    string    `json:"source"` // the file it came from, or "api"
	CreatedAt time.Time `json:"created_at"`
	// Added is false when the same (partner, channel, recipient) was
	// already stored: ID is then the stored one's. Set by AddSuppressions.
	Added bool `json:"added,omitempty"`
}

const suppressionColumns = `id, partner, channel, recipient, reason, source, created_at`

// suppressionCache is the whole suppression list in memory: the sender
// asks once per message, and a query per message halved its rate
// (BenchmarkHTTPDeliverySuppressed). It is loaded at the first question
// and kept current by this Store's writes (the daemon is the database's
// only writer); about 100 bytes per suppression. SQLite only: on
// PostgreSQL other nodes write too (suppressions_pg.go).
type suppressionCache struct {
	mu     sync.RWMutex
	loaded bool
	keys   map[string]struct{}
}

func suppressionKey(partner, channel, recipient string) string {
	return partner + "\x00" + channel + "\x00" + recipient
}

// IsSuppressed reports whether the partner may not message recipient on
// channel: a suppression on that channel or on every channel. recipient
// must be normalised as suppressions are stored.
func (s *Store) IsSuppressed(ctx context.Context, partner, channel, recipient string) (bool, error) {
	if s.pg {
		return s.isSuppressedPG(ctx, partner, channel, recipient) // suppressions_pg.go: no cache across nodes
	}
	c := &s.sup
	c.mu.RLock()
	if c.loaded {
		_, all := c.keys[suppressionKey(partner, "", recipient)]
		_, one := c.keys[suppressionKey(partner, channel, recipient)]
		c.mu.RUnlock()
		return all || one, nil
	}
	c.mu.RUnlock()
	if err := s.loadSuppressions(ctx); err != nil {
		return false, err
	}
	return s.IsSuppressed(ctx, partner, channel, recipient)
}

// loadSuppressions fills the cache. The lock is held across the query, so
// a write that commits meanwhile updates the cache after it (cacheAdd,
// cacheRemove) and is not lost.
func (s *Store) loadSuppressions(ctx context.Context) error {
	c := &s.sup
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return nil
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT partner, channel, recipient FROM suppressions`)
	if err != nil {
		return fmt.Errorf("cannot read the suppression list: %w", err)
	}
	defer rows.Close()
	keys := map[string]struct{}{}
	for rows.Next() {
		var p, ch, r string
		if err := rows.Scan(&p, &ch, &r); err != nil {
			return fmt.Errorf("cannot read the suppression list: %w", err)
		}
		keys[suppressionKey(p, ch, r)] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read the suppression list: %w", err)
	}
	c.keys, c.loaded = keys, true
	return nil
}

// cacheAdd and cacheRemove apply committed writes to a loaded cache.
func (s *Store) cacheAdd(sups []Suppression) {
	c := &s.sup
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		for _, x := range sups {
			c.keys[suppressionKey(x.Partner, x.Channel, x.Recipient)] = struct{}{}
		}
	}
}

func (s *Store) cacheRemove(sups []Suppression) {
	c := &s.sup
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		for _, x := range sups {
			delete(c.keys, suppressionKey(x.Partner, x.Channel, x.Recipient))
		}
	}
}

// AddSuppressions stores suppressions in one transaction; one already
// stored is kept as it was. It returns them with their IDs and Added set.
func (s *Store) AddSuppressions(ctx context.Context, sups []Suppression) ([]Suppression, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out, err := addSuppressions(ctx, tx, sups)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.cacheAdd(out)
	return out, nil
}

// ApplySuppressionFile stores the suppressions of a suppress/ file and
// marks the file queued (so the same content is refused again), all or
// nothing. It returns how many were new and how many already stored.
func (s *Store) ApplySuppressionFile(ctx context.Context, fileID int64, rows int, sups []Suppression) (added, present int, err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	out, err := addSuppressions(ctx, tx, sups)
	if err != nil {
		return 0, 0, err
	}
	for _, x := range out {
		if x.Added {
			added++
		} else {
			present++
		}
	}
	if err := checkFenceTx(ctx, tx); err != nil { // fileclaims.go
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, rows_total = ?, updated_at = ? WHERE id = ?`,
		FileQueued, rows, ms(time.Now()), fileID); err != nil {
		return 0, 0, fmt.Errorf("cannot record file %d: %w", fileID, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	s.cacheAdd(out)
	return added, present, nil
}

func addSuppressions(ctx context.Context, tx *sql.Tx, sups []Suppression) ([]Suppression, error) {
	ins, err := tx.PrepareContext(ctx, `INSERT INTO suppressions (partner, channel, recipient, reason, source, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	now := time.Now()
	out := make([]Suppression, len(sups))
	for i, x := range sups {
		x.CreatedAt = now.UTC().Truncate(time.Millisecond)
		err := ins.QueryRowContext(ctx, x.Partner, x.Channel, x.Recipient, x.Reason, x.Source, ms(now)).Scan(&x.ID)
		switch {
		case err == nil:
			x.Added = true
		case errors.Is(err, sql.ErrNoRows):
			x, err = scanSuppression(tx.QueryRowContext(ctx, `SELECT `+suppressionColumns+` FROM suppressions
				WHERE partner = ? AND recipient = ? AND channel = ?`, x.Partner, x.Recipient, x.Channel))
			if err != nil {
				return nil, fmt.Errorf("cannot read suppression: %w", err)
			}
		default:
			return nil, fmt.Errorf("cannot store suppression: %w", err)
		}
		out[i] = x
	}
	return out, nil
}

// SuppressionPage returns a partner's suppressions ("" partner: every
// partner's) with id > after in id order, at most limit, optionally only
// those of one recipient and/or channel.
func (s *Store) SuppressionPage(ctx context.Context, partner, recipient, channel string, after int64, limit int) ([]Suppression, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+suppressionColumns+` FROM suppressions
		WHERE (? = '' OR partner = ?) AND (? = '' OR recipient = ?) AND (? = '' OR channel = ?) AND id > ?
		ORDER BY id LIMIT ?`, partner, partner, recipient, recipient, channel, channel, after, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list suppressions: %w", err)
	}
	defer rows.Close()
	out := []Suppression{}
	for rows.Next() {
		x, err := scanSuppression(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// DeleteSuppression removes one suppression of the partner ("" partner:
// any); ErrNotFound when there is none with that id.
func (s *Store) DeleteSuppression(ctx context.Context, partner string, id int64) error {
	gone, err := s.deleteSuppressions(ctx, `DELETE FROM suppressions WHERE id = ? AND (? = '' OR partner = ?)
		RETURNING partner, channel, recipient`, id, partner, partner)
	if err != nil {
		return fmt.Errorf("cannot delete suppression %d: %w", id, err)
	}
	if gone == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteSuppressionsOf removes a partner's suppressions of one recipient
// (on one channel, or on any when channel is "") and returns how many.
func (s *Store) DeleteSuppressionsOf(ctx context.Context, partner, recipient, channel string) (int, error) {
	n, err := s.deleteSuppressions(ctx, `DELETE FROM suppressions WHERE partner = ? AND recipient = ? AND (? = '' OR channel = ?)
		RETURNING partner, channel, recipient`, partner, recipient, channel, channel)
	if err != nil {
		return 0, fmt.Errorf("cannot delete suppressions: %w", err)
	}
	return n, nil
}

// deleteSuppressions runs a DELETE ... RETURNING partner, channel,
// recipient and removes what it deleted from the cache.
func (s *Store) deleteSuppressions(ctx context.Context, q string, args ...any) (int, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	var gone []Suppression
	for rows.Next() {
		var x Suppression
		if err := rows.Scan(&x.Partner, &x.Channel, &x.Recipient); err != nil {
			rows.Close()
			return 0, err
		}
		gone = append(gone, x)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	s.cacheRemove(gone)
	return len(gone), nil
}

func scanSuppression(r interface{ Scan(...any) error }) (Suppression, error) {
	var x Suppression
	var created int64
	if err := r.Scan(&x.ID, &x.Partner, &x.Channel, &x.Recipient, &x.Reason, &x.Source, &created); err != nil {
		return Suppression{}, err
	}
	x.CreatedAt = fromMS(created)
	return x, nil
}
