package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertJob creates a job at now, which is also its messages' created_at
// (messages have none of their own, see migration 0005).
func (s *Store) insertJob(ctx context.Context, db execer, j Job, now time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO jobs (partner, source, file_id, file_name, status, priority, total, created_at)
		VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?)`, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority, j.Total, ms(now))
	if err != nil {
		return 0, fmt.Errorf("cannot create job: %w", err)
	}
	return res.LastInsertId()
}

// insertMessageSQL inserts one message. Its partner, priority and
// created_at are its job's.
const insertMessageSQL = `INSERT INTO messages (job_id, channel, line, ref, recipient, subject, body, format, sender, vars,
	status, next_attempt_at, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// messageArgCount is the number of values insertMessageSQL binds per row.
const messageArgCount = 14

// appendMessageArgs appends one message's values in insertMessageSQL order;
// now is its job's created_at, the default send time.
func appendMessageArgs(args []any, jobID int64, m *Message, now time.Time) []any {
	v := messageValues(m, now)
	return append(args, jobID, v.channel, m.Line, m.Ref, m.Recipient, v.subject, m.Body,
		v.format, v.sender, v.vars, MsgQueued, v.next, v.expires, ms(now))
}

// insertMessagesTx inserts the messages of a job created at now.
func insertMessagesTx(ctx context.Context, tx *sql.Tx, jobID int64, now time.Time, batch []Message) ([]int64, error) {
	stmt, err := tx.PrepareContext(ctx, insertMessageSQL)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	ids := make([]int64, 0, len(batch))
	args := make([]any, 0, messageArgCount)
	for i := range batch {
		m := &batch[i]
		res, err := stmt.ExecContext(ctx, appendMessageArgs(args[:0], jobID, m, now)...)
		if err != nil {
			return nil, fmt.Errorf("cannot insert message for line %d: %w", m.Line, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("cannot read the id of the message for line %d: %w", m.Line, err)
		}
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		// Inserted in one transaction by the only writer: ids ascend.
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET first_message_id = ?, last_message_id = ? WHERE id = ?`,
			ids[0], ids[len(ids)-1], jobID); err != nil {
			return nil, fmt.Errorf("cannot record the message range of job %d: %w", jobID, err)
		}
	}
	return ids, tallyJob(ctx, tx, jobID)
}

// CreateJob stores a whole small job (API sends, workflow runs) in one
// transaction and returns it with the ids of its messages, in order. The
// messages have the job's partner and priority, whatever they say.
func (s *Store) CreateJob(ctx context.Context, j Job, msgs []Message) (Job, []int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Job{}, nil, err
	}
	defer tx.Rollback()
	j.Status, j.Total = JobQueued, len(msgs)
	if len(msgs) == 0 {
		j.Status = JobDone
	}
	now := time.Now()
	id, err := s.insertJob(ctx, tx, j, now)
	if err != nil {
		return Job{}, nil, err
	}
	ids, err := insertMessagesTx(ctx, tx, id, now, msgs)
	if err != nil {
		return Job{}, nil, err
	}
	if err := tx.Commit(); err != nil {
		return Job{}, nil, err
	}
	s.jobsQueued()
	j.ID = id
	return j, ids, nil
}
