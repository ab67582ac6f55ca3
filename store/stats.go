package store

import (
	"context"
	"fmt"
)

// StatusCount is how many rows of one kind are in one status.
type StatusCount struct {
	Kind    string // files | jobs | messages
	Channel string // messages only
	Status  string
	Count   int64
}

// StatusCounts counts files, jobs and messages per status (messages also
// per channel), for the metrics endpoint. The messages count walks the
// (job_id, status) index rather than the table.
func (s *Store) StatusCounts(ctx context.Context) ([]StatusCount, error) {
	rows, err := s.reader.QueryContext(ctx, `
		SELECT 'files', '', status, COUNT(*) FROM files GROUP BY status
		UNION ALL SELECT 'jobs', '', status, COUNT(*) FROM jobs GROUP BY status
		UNION ALL SELECT 'messages', channel, status, COUNT(*) FROM messages GROUP BY channel, status`)
	if err != nil {
		return nil, fmt.Errorf("cannot count statuses: %w", err)
	}
	defer rows.Close()
	var out []StatusCount
	for rows.Next() {
		var c StatusCount
		if err := rows.Scan(&c.Kind, &c.Channel, &c.Status, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
