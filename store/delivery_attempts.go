package store

import (
	"context"
	"fmt"
	"time"
)

// Attempt is one recorded delivery attempt of a message.
type Attempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"` // sent | retry | failed
	Error   string    `json:"error,omitempty"`
}

// MessageAttempts returns a message's delivery attempts, oldest first.
//
// Retried and failed attempts have a row in attempts; the successful one,
// the last, lives in the message row itself (sent_at), which saves the
// sender an insert per message. It is numbered after the recorded ones, as
// its row would have been. (Databases from before that change have a row
// for it, which is then used as it is.)
func (s *Store) MessageAttempts(ctx context.Context, id int64) ([]Attempt, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT attempt, at, outcome, error FROM attempts WHERE message_id = ?1
		UNION ALL
		SELECT COALESCE((SELECT MAX(attempt) FROM attempts WHERE message_id = ?1), 0) + 1, sent_at, 'sent', ''
		FROM messages WHERE id = ?1 AND status IN ('sent', 'sending') AND sent_at IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM attempts WHERE message_id = ?1 AND outcome = 'sent')
		ORDER BY 1`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot read attempts of message %d: %w", id, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var at int64
		if err := rows.Scan(&a.Attempt, &at, &a.Outcome, &a.Error); err != nil {
			return nil, fmt.Errorf("cannot read attempts of message %d: %w", id, err)
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}
