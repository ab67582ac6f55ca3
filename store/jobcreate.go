package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const insertJobSQL = `INSERT INTO jobs (partner, source, file_id, file_name, status, priority, total, templates, created_at)
	VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?, ?)`

// insertJob creates a job at now, which is also its messages' created_at
// (messages have none of their own, see migration 0005).
func (s *Store) insertJob(ctx context.Context, db execer, j Job, now time.Time) (int64, error) {
	if s.pg {
		return s.insertJobPg(ctx, db, j, now)
	}
	res, err := db.ExecContext(ctx, insertJobSQL, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority, j.Total,
		encodeTemplateRefs(j.Templates), ms(now))
	if err != nil {
		return 0, fmt.Errorf("cannot create job: %w", err)
	}
	return res.LastInsertId()
}

const (
	jobRangeSQL = `UPDATE jobs SET first_message_id = ?, last_message_id = ? WHERE id = ?`
	// A new job's tally (migration 0012): its messages are all queued.
	jobCountSQL = `INSERT INTO job_counts (job_id, channel, status, n) VALUES (?, ?, ?, ?)`
)

// shapeSQL caches each insert shape's statement text (a few shapes serve
// every job), so that a send does not rebuild it.
var shapeSQL sync.Map // insertShape -> string

func (sh insertShape) cachedSQL() string {
	if q, ok := shapeSQL.Load(sh); ok {
		return q.(string)
	}
	q := sh.sql()
	shapeSQL.Store(sh, q)
	return q
}

// smallJob is a job written in one transaction (an API send, a workflow
// run) with its insert statements, built before the transaction so that
// the writer's connection is held only to run them.
type smallJob struct {
	job    Job
	msgs   []Message
	now    time.Time
	chunks []insertChunk
	// grouped: written with its group's statements (apisend_group.go),
	// without chunks of its own.
	grouped bool
}

// newSmallJob builds the statements of a job of msgs created at now. The
// job id is bound when it is known (bindJob). On PostgreSQL it has none:
// insertJobsPg writes it.
func (s *Store) newSmallJob(j Job, msgs []Message, now time.Time) *smallJob {
	sj := &smallJob{job: j, msgs: msgs, now: now}
	if len(msgs) > 0 && !s.pg {
		vals := make([]storedValues, len(msgs))
		for i := range msgs {
			vals[i] = messageValues(&msgs[i], now)
		}
		sj.chunks, _ = appendChunks(nil, nil, 0, now, msgs, vals)
	}
	return sj
}

// queries are the statements a small job runs, for Store.prepare.
func (sj *smallJob) queries() []string {
	qs := []string{insertJobSQL, jobRangeSQL, jobCountSQL}
	for _, c := range sj.chunks {
		qs = append(qs, c.shape.cachedSQL())
	}
	return qs
}

// insertMessagesTx inserts a new job's messages with multi-row statements
// (the file jobs' shapes, jobwriter_shapes.go), records their id range and
// tallies them, in tx. Every statement must have been prepared
// (sj.queries). One statement per message was most of a 1,000-recipient
// send's time.
func (s *Store) insertMessagesTx(ctx context.Context, tx *sql.Tx, jobID int64, sj *smallJob) ([]int64, error) {
	ids := make([]int64, 0, len(sj.msgs))
	for _, c := range sj.chunks {
		c.args[0] = jobID // alwaysShared starts with job_id
		st, err := s.txStmt(ctx, tx, c.shape.cachedSQL())
		if err != nil {
			return nil, err
		}
		res, err := st.ExecContext(ctx, c.args...)
		if err != nil {
			return nil, fmt.Errorf("cannot insert messages of job %d: %w", jobID, err)
		}
		// One statement's rows get consecutive rowids (each the table's
		// largest plus one), the last of them reported here.
		last, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("cannot read the ids of the messages of job %d: %w", jobID, err)
		}
		for id := last - int64(c.shape.rows) + 1; id <= last; id++ {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ids, nil
	}
	// Inserted in one transaction by the only writer: ids ascend.
	st, err := s.txStmt(ctx, tx, jobRangeSQL)
	if err != nil {
		return nil, err
	}
	if _, err := st.ExecContext(ctx, ids[0], ids[len(ids)-1], jobID); err != nil {
		return nil, fmt.Errorf("cannot record the message range of job %d: %w", jobID, err)
	}
	// The tally of a new job is known without reading it back (a
	// recount by GROUP BY was a fifth of a single send's statements).
	order, counts := channelCounts(sj.msgs)
	if st, err = s.txStmt(ctx, tx, jobCountSQL); err != nil {
		return nil, err
	}
	for _, ch := range order {
		if _, err := st.ExecContext(ctx, jobID, ch, MsgQueued, counts[ch]); err != nil {
			return nil, fmt.Errorf("cannot tally job %d: %w", jobID, err)
		}
	}
	return ids, nil
}

// insertSmallJobTx creates the job and its messages in tx.
func (s *Store) insertSmallJobTx(ctx context.Context, tx *sql.Tx, sj *smallJob) (int64, []int64, error) {
	if s.pg {
		jobIDs, msgIDs, err := s.insertJobsPg(ctx, tx, []*smallJob{sj})
		if err != nil {
			return 0, nil, err
		}
		return jobIDs[0], msgIDs[0], nil
	}
	st, err := s.txStmt(ctx, tx, insertJobSQL)
	if err != nil {
		return 0, nil, err
	}
	j := sj.job
	res, err := st.ExecContext(ctx, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority, j.Total,
		encodeTemplateRefs(j.Templates), ms(sj.now))
	if err != nil {
		return 0, nil, fmt.Errorf("cannot create job: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, nil, err
	}
	ids, err := s.insertMessagesTx(ctx, tx, id, sj)
	return id, ids, err
}

// CreateJob stores a whole small job (API sends, workflow runs) in one
// transaction and returns it with the ids of its messages, in order. The
// messages have the job's partner and priority, whatever they say.
func (s *Store) CreateJob(ctx context.Context, j Job, msgs []Message) (Job, []int64, error) {
	j.Status, j.Total = JobQueued, len(msgs)
	if len(msgs) == 0 {
		j.Status = JobDone
	}
	sj := s.newSmallJob(j, msgs, time.Now())
	if err := s.prepare(ctx, sj.queries()...); err != nil {
		return Job{}, nil, err
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Job{}, nil, err
	}
	defer tx.Rollback()
	id, ids, err := s.insertSmallJobTx(ctx, tx, sj)
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

// channelCounts counts msgs by channel, the channels in their first order
// (the order a new job's tally rows are written in).
func channelCounts(msgs []Message) (order []string, counts map[string]int) {
	counts = map[string]int{}
	for i := range msgs {
		ch := msgs[i].Channel
		if counts[ch] == 0 {
			order = append(order, ch)
		}
		counts[ch]++
	}
	return order, counts
}
