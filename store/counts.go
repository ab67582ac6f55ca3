package store

import (
	"context"
	"database/sql"
	"fmt"
)

// tallyJob recounts one job's messages into job_counts (migration 0012),
// in the transaction that inserted them. Only small jobs written in one
// transaction (API sends, CreateJob) come here: a file job is counted by
// the trigger that fires when it leaves "ingesting".
func tallyJob(ctx context.Context, tx *sql.Tx, jobID int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM job_counts WHERE job_id = ?`, jobID); err != nil {
		return fmt.Errorf("cannot tally job %d: %w", jobID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO job_counts (job_id, channel, status, n)
		SELECT job_id, channel, status, COUNT(*) FROM messages WHERE job_id = ? GROUP BY status, channel`, jobID); err != nil {
		return fmt.Errorf("cannot tally job %d: %w", jobID, err)
	}
	return nil
}
