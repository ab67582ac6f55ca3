package store

import (
	"context"
	"fmt"
)

// FinishedFileJobsToReport returns file jobs that have ended (done, or
// cancelled with no message left queued or in flight, so finished_at is
// set) and whose result report is not yet written, oldest first. A
// cancelled job whose messages are still being cancelled in batches is left
// for later, so the report shows every message's final status.
func (s *Store) FinishedFileJobsToReport(ctx context.Context, limit int) ([]Job, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE status IN (?, ?) AND source = ? AND reported_at IS NULL AND finished_at IS NOT NULL ORDER BY id LIMIT ?`,
		JobDone, JobCancelled, SourceFile, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list finished jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}
