package store

import (
	"context"
	"fmt"
	"time"
)

// createJobPG is CreateJob on PostgreSQL, a row per statement: a stopgap
// so that the sender's store methods can be tested on PostgreSQL before
// the job writers' PostgreSQL paths exist (the pgcore branch replaces it
// with the multi-row form).
func (s *Store) createJobPG(ctx context.Context, j Job, msgs []Message) (Job, []int64, error) {
	now := time.Now()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Job{}, nil, err
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, insertJobSQL+` RETURNING id`, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority,
		j.Total, encodeTemplateRefs(j.Templates), ms(now)).Scan(&id); err != nil {
		return Job{}, nil, fmt.Errorf("cannot create job: %w", err)
	}
	ids := make([]int64, len(msgs))
	counts := map[string]int{}
	for i := range msgs {
		v := messageValues(&msgs[i], now)
		m := &msgs[i]
		if err := tx.QueryRowContext(ctx, `INSERT INTO messages (job_id, status, updated_at, channel, subject, format, sender,
			next_attempt_at, expires_at, vars, line, ref, recipient, body) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			id, ms(now), v.channel, v.subject, v.format, v.sender, v.next, v.expires, v.vars, m.Line, m.Ref, m.Recipient, m.Body).
			Scan(&ids[i]); err != nil {
			return Job{}, nil, fmt.Errorf("cannot insert messages of job %d: %w", id, err)
		}
		counts[v.channel]++
	}
	if len(ids) > 0 {
		if _, err := tx.ExecContext(ctx, jobRangeSQL, ids[0], ids[len(ids)-1], id); err != nil {
			return Job{}, nil, fmt.Errorf("cannot record the message range of job %d: %w", id, err)
		}
	}
	for ch, n := range counts {
		if _, err := tx.ExecContext(ctx, jobCountSQL, id, ch, MsgQueued, n); err != nil {
			return Job{}, nil, fmt.Errorf("cannot tally job %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Job{}, nil, err
	}
	s.jobsQueued()
	j.ID = id
	return j, ids, nil
}
