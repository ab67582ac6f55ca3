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
func (s *Store) MessageAttempts(ctx context.Context, id int64) ([]Attempt, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT attempt, at, outcome, error FROM attempts WHERE message_id = ? ORDER BY attempt`, id)
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
