package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// cancelBatch bounds how many messages one cancel or retry transaction
// touches, so a million-row job never holds the writer for long.
const cancelBatch = 5000

// jobStatusTx reads a job's status inside a transaction.
func jobStatusTx(ctx context.Context, tx *sql.Tx, id int64) (string, error) {
	var st string
	err := tx.QueryRowContext(ctx, `SELECT status FROM jobs WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("cannot read job %d: %w", id, err)
	}
	return st, nil
}

// setJobStatus runs one short transaction that moves a job from one of the
// allowed statuses to next (see transition). Statuses in same leave the job
// as it is (the call is idempotent); anything else is ErrConflict.
func (s *Store) setJobStatus(ctx context.Context, id int64, transition func(current string) (next string, err error)) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot change job %d: %w", id, err)
	}
	defer tx.Rollback()
	cur, err := jobStatusTx(ctx, tx, id)
	if err != nil {
		return err
	}
	next, err := transition(cur)
	if err != nil {
		return err
	}
	if next != cur {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ? WHERE id = ?`, next, id); err != nil {
			return fmt.Errorf("cannot change job %d to %s: %w", id, next, err)
		}
	}
	if next == JobQueued || next == JobSending {
		// A resumed job whose messages all ended while it was paused is done.
		if err := finishJobTx(ctx, tx, id, time.Now()); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if cur == JobPaused && (next == JobQueued || next == JobSending) {
		s.jobsQueued()
	}
	return nil
}

func conflict(id int64, status, action string) error {
	return fmt.Errorf("%w: job %d is %s and cannot be %s", ErrConflict, id, status, action)
}

// PauseJob stops the sender from taking more messages of the job; messages
// already in flight finish. Pausing a paused job does nothing; pausing a job
// that is still being ingested, done or cancelled is ErrConflict.
func (s *Store) PauseJob(ctx context.Context, id int64) (Job, error) {
	err := s.setJobStatus(ctx, id, func(cur string) (string, error) {
		switch cur {
		case JobQueued, JobSending, JobPaused:
			return JobPaused, nil
		}
		return "", conflict(id, cur, "paused")
	})
	if err != nil {
		return Job{}, err
	}
	return s.Job(ctx, id)
}

// ResumeJob lets the sender take the messages of a paused job again.
// Resuming a queued or sending job does nothing; resuming a job that is
// being ingested, done or cancelled is ErrConflict.
func (s *Store) ResumeJob(ctx context.Context, id int64) (Job, error) {
	var started bool
	if j, err := s.Job(ctx, id); err == nil {
		started = !j.StartedAt.IsZero()
	}
	err := s.setJobStatus(ctx, id, func(cur string) (string, error) {
		switch cur {
		case JobQueued, JobSending:
			return cur, nil
		case JobPaused:
			if started {
				return JobSending, nil
			}
			return JobQueued, nil
		}
		return "", conflict(id, cur, "resumed")
	})
	if err != nil {
		return Job{}, err
	}
	return s.Job(ctx, id)
}

// CancelJob cancels the job's queued messages; messages in flight finish and
// keep their outcome. The job is cancelled at once (the sender stops taking
// its messages with that one-row update); its queued messages then change in
// short batches. Cancelling a cancelled job finishes any batches a crash
// interrupted; cancelling a done or ingesting job is ErrConflict.
func (s *Store) CancelJob(ctx context.Context, id int64) (Job, error) {
	err := s.setJobStatus(ctx, id, func(cur string) (string, error) {
		switch cur {
		case JobQueued, JobSending, JobPaused, JobCancelled:
			return JobCancelled, nil
		}
		return "", conflict(id, cur, "cancelled")
	})
	if err != nil {
		return Job{}, err
	}
	for {
		n, err := s.cancelQueuedBatch(ctx, id)
		if err != nil {
			return Job{}, err
		}
		if n < cancelBatch {
			break
		}
	}
	return s.Job(ctx, id)
}

// cancelQueuedBatch cancels up to cancelBatch queued messages of a job and,
// once none is queued or in flight, records when the job finished.
func (s *Store) cancelQueuedBatch(ctx context.Context, id int64) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot cancel job %d: %w", id, err)
	}
	defer tx.Rollback()
	now := time.Now()
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET status = 'cancelled', lease_until = 0, updated_at = ?
		WHERE id IN (SELECT id FROM messages WHERE job_id = ? AND status = 'queued' LIMIT ?)
		RETURNING job_id, channel, status`, ms(now), id, cancelBatch)
	if err != nil {
		return 0, fmt.Errorf("cannot cancel messages of job %d: %w", id, err)
	}
	c := changes{}
	n, err := scanChanges(rows, MsgQueued, c)
	if err != nil {
		return 0, fmt.Errorf("cannot cancel messages of job %d: %w", id, err)
	}
	if err := tallyChangesTx(ctx, tx, c, now); err != nil {
		return 0, err
	}
	if err := finishJobTx(ctx, tx, id, now); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot cancel job %d: %w", id, err)
	}
	return int64(n), nil
}

// RetryJob queues the job's failed messages again, due now, with their
// attempt count reset and a fresh max-age window, and reopens the job (a
// paused job stays paused). A job with no failed message is returned as it
// is; retrying a job that is being ingested or cancelled is ErrConflict.
func (s *Store) RetryJob(ctx context.Context, id int64) (Job, error) {
	j, err := s.Job(ctx, id)
	if err != nil {
		return Job{}, err
	}
	switch j.Status {
	case JobIngesting, JobCancelled:
		return Job{}, conflict(id, j.Status, "retried")
	}
	for {
		n, err := s.retryFailedBatch(ctx, id)
		if err != nil {
			return Job{}, err
		}
		if n < cancelBatch {
			break
		}
	}
	return s.Job(ctx, id)
}

// retryFailedBatch requeues up to cancelBatch failed messages of a job and
// reopens the job if it had finished.
func (s *Store) retryFailedBatch(ctx context.Context, id int64) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot retry job %d: %w", id, err)
	}
	defer tx.Rollback()
	now := ms(time.Now())
	// The job is reopened before its messages change: a finished job's
	// counts were added to the totals when it finished and are taken back
	// as they are when it reopens (migration 0012).
	// Reopening clears reported_at so the partner's result report is
	// written again when the retried messages have ended.
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, finished_at = NULL, reported_at = NULL
		WHERE id = ? AND status = ? AND EXISTS (SELECT 1 FROM messages WHERE job_id = ? AND status = 'failed')`,
		JobSending, id, JobDone, id); err != nil {
		return 0, fmt.Errorf("cannot reopen job %d: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET status = 'queued', attempts = 0, next_attempt_at = ?, lease_until = 0,
		expires_at = 0, age_from = ?, updated_at = ?
		WHERE id IN (SELECT id FROM messages WHERE job_id = ? AND status = 'failed' LIMIT ?)
		RETURNING job_id, channel, status`, now, now, now, id, cancelBatch)
	if err != nil {
		return 0, fmt.Errorf("cannot retry messages of job %d: %w", id, err)
	}
	c := changes{}
	nr, err := scanChanges(rows, MsgFailed, c)
	if err != nil {
		return 0, fmt.Errorf("cannot retry messages of job %d: %w", id, err)
	}
	if err := tallyChangesTx(ctx, tx, c, fromMS(now)); err != nil {
		return 0, err
	}
	n := int64(nr)
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot retry job %d: %w", id, err)
	}
	if n > 0 {
		s.jobsQueued()
	}
	return n, nil
}
