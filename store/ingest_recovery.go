package store

import (
	"context"
	"fmt"
)

// AbandonInterruptedIngests removes what an ingest cut short by a crash left
// behind: jobs still "ingesting", with their messages, and file records still
// "received". Their files are still in the inboxes and are read again. Call
// it only at start, before any file is ingested.
func (s *Store) AbandonInterruptedIngests(ctx context.Context) (jobs, files int64, err error) {
	rows, err := s.writer.QueryContext(ctx, `SELECT id FROM jobs WHERE status = ?`, JobIngesting)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot list interrupted ingests: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, id := range ids {
		w := &JobWriter{s: s, jobID: id, closed: true}
		if err := w.Abort(ctx); err != nil {
			return jobs, 0, err
		}
		jobs++
	}
	res, err := s.writer.ExecContext(ctx, `DELETE FROM files WHERE status = ?`, FileReceived)
	if err != nil {
		return jobs, 0, fmt.Errorf("cannot remove interrupted file records: %w", err)
	}
	files, _ = res.RowsAffected()
	return jobs, files, nil
}
