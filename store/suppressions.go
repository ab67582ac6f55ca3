package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// suppressedQuery answers the sender's per-message question with one probe
// of suppressions_key: the channel's row or the every-channel row.
const suppressedQuery = `SELECT EXISTS (SELECT 1 FROM suppressions WHERE partner = ? AND recipient = ? AND channel IN ('', ?))`

// IsSuppressed reports whether the partner may not message recipient on
// channel. recipient must be normalised as suppressions are stored.
func (s *Store) IsSuppressed(ctx context.Context, partner, channel, recipient string) (bool, error) {
	st, err := s.stmts.stmt(ctx, s.reader, suppressedQuery)
	if err != nil {
		return false, err
	}
	var yes bool
	if err := st.QueryRowContext(ctx, partner, recipient, channel).Scan(&yes); err != nil {
		return false, fmt.Errorf("cannot check the suppression list: %w", err)
	}
	return yes, nil
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
	return out, tx.Commit()
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
	if _, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, rows_total = ?, updated_at = ? WHERE id = ?`,
		FileQueued, rows, ms(time.Now()), fileID); err != nil {
		return 0, 0, fmt.Errorf("cannot record file %d: %w", fileID, err)
	}
	return added, present, tx.Commit()
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
	res, err := s.writer.ExecContext(ctx, `DELETE FROM suppressions WHERE id = ? AND (? = '' OR partner = ?)`, id, partner, partner)
	if err != nil {
		return fmt.Errorf("cannot delete suppression %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteSuppressionsOf removes a partner's suppressions of one recipient
// (on one channel, or on any when channel is "") and returns how many.
func (s *Store) DeleteSuppressionsOf(ctx context.Context, partner, recipient, channel string) (int, error) {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM suppressions WHERE partner = ? AND recipient = ? AND (? = '' OR channel = ?)`,
		partner, recipient, channel, channel)
	if err != nil {
		return 0, fmt.Errorf("cannot delete suppressions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
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
