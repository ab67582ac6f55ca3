package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
)

// On SQLite a batch of fired runs is stored through the driver's own
// interfaces on the writer's connection, as file jobs' messages and a
// batch's events are (jobwriter_raw.go, events_raw.go): database/sql's
// per-statement work (a fresh []driver.NamedValue per statement, the Tx's
// statement bookkeeping, a context watcher) and the steps' per-row binding
// of what a batch's steps share (their time, outcome and detail) were
// spent on the writer, the scheduler's critical path
// (workflow/BENCHMARKS.md, session 8). PostgreSQL keeps advanceRuns.

// stepsTable is workflow_steps for rawEventStmts.insertRaw: a batch's
// queued steps share their step index, time and outcome, and leave detail
// at its default, so a row binds its run and message ids alone.
var stepsTable = rawTable{name: "workflow_steps",
	cols:     []string{"run_id", "step", "at", "outcome", "message_id", "detail"},
	defaults: []any{nil, nil, nil, nil, int64(0), ""}}

// rawStmts are statements prepared on the writer's driver connection, by
// their text; a new connection (the pool replaced a broken one) starts a
// new set.
type rawStmts struct {
	mu    sync.Mutex
	conn  any
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
}

// exec runs q with args on dc, preparing it once per connection. The
// caller holds r.mu.
func (r *rawStmts) exec(ctx context.Context, dc any, q string, args ...any) (driver.Result, error) {
	if dc != r.conn {
		r.conn, r.stmts = dc, map[string]driver.Stmt{}
	}
	st, ok := r.stmts[q]
	if !ok {
		var err error
		if st, err = dc.(driver.ConnPrepareContext).PrepareContext(ctx, q); err != nil {
			return nil, err
		}
		r.stmts[q] = st
	}
	r.args = r.args[:0]
	for i, v := range args {
		r.args = append(r.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return st.(driver.StmtExecContext).ExecContext(ctx, r.args)
}

// advanceSQLite is advanceRuns on SQLite, on the writer's driver
// connection, in one transaction.
func (s *Store) advanceSQLite(ctx context.Context, p *AdvancePlan) (jobs []Job, err error) {
	ctx = context.WithoutCancel(ctx) // see acceptEvents: a bounded batch, run to its end
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		jobs, err = s.advanceRaw(ctx, dc, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(jobs) > 0 {
		s.jobsQueued()
	}
	return jobs, nil
}

func (s *Store) advanceRaw(ctx context.Context, dc any, p *AdvancePlan) ([]Job, error) {
	r := &s.wfRaw
	r.mu.Lock()
	defer r.mu.Unlock()
	tx, err := dc.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	// The count each move changed says whether each of its runs was still
	// where the scheduler read it.
	for _, m := range p.moves {
		var n int64
		if m.ranges == nil {
			res, err := r.exec(ctx, dc, runAdvanceSQL, int64(m.to), m.status, m.due, m.lastError, ms(p.now), int64(m.from), m.list)
			if err != nil {
				return nil, fmt.Errorf("cannot move runs on: %w", err)
			}
			n, _ = res.RowsAffected()
		}
		for _, rg := range m.ranges {
			res, err := r.exec(ctx, dc, runAdvanceRangeSQL, int64(m.to), m.status, m.due, m.lastError, ms(p.now), int64(m.from), rg[0], rg[1])
			if err != nil {
				return nil, fmt.Errorf("cannot move runs on: %w", err)
			}
			k, _ := res.RowsAffected()
			n += k
		}
		if n != int64(len(m.ids)) {
			return nil, fmt.Errorf("%d of %d runs: %w", int64(len(m.ids))-n, len(m.ids), ErrRunMoved)
		}
	}
	for _, args := range p.dueRows {
		if _, err := r.exec(ctx, dc, dueRangeInsertSQL(len(args)/3), args...); err != nil {
			return nil, fmt.Errorf("cannot record when runs are due: %w", err)
		}
	}
	if p.passed != nil {
		// After the moves: the batch's own runs no longer wait.
		if _, err := r.exec(ctx, dc, passedDueSQL, p.passed...); err != nil {
			return nil, fmt.Errorf("cannot drop the due ranges of fired runs: %w", err)
		}
	}
	ended, err := endedCounts(p.advs)
	if err != nil {
		return nil, err
	}
	for _, c := range ended {
		if _, err := r.exec(ctx, dc, runsLeftSQL, int64(c.n), c.partner, c.workflow); err != nil {
			return nil, fmt.Errorf("cannot count the runs of %s: %w", c.workflow, err)
		}
		if _, err := r.exec(ctx, dc, runsReachedSQL, c.partner, c.workflow, c.status, int64(c.n)); err != nil {
			return nil, fmt.Errorf("cannot count the runs of %s: %w", c.workflow, err)
		}
	}
	var jobs []Job
	msgIDs := make([]int64, len(p.advs))
	for k, pt := range p.partners {
		sj := p.smalls[k]
		id, ids, err := s.insertSmallJobRaw(ctx, r, dc, sj)
		if err != nil {
			return nil, err
		}
		for j, i := range p.byPartner[pt] {
			msgIDs[i] = ids[j]
		}
		job := sj.job
		job.ID, job.CreatedAt = id, p.now
		jobs = append(jobs, job)
	}
	const width = 6 * stepChunk
	for _, m := range p.mids {
		p.steps[m.arg/width][m.arg%width] = msgIDs[m.adv]
	}
	for _, args := range p.steps {
		if err := s.evRaw.insertRaw(ctx, dc, &stepsTable, args, len(args)/6); err != nil {
			return nil, fmt.Errorf("cannot record the steps of runs: %w", err)
		}
	}
	for _, args := range p.sentRows(msgIDs) {
		if _, err := r.exec(ctx, dc, sentInsertSQL(len(args)/5), args...); err != nil {
			return nil, fmt.Errorf("cannot record the sent steps of runs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	committed = true
	return jobs, nil
}

// insertSmallJobRaw is insertSmallJobTx on the driver connection dc: the
// job, its messages in the shapes newSmallJob built, their id range and
// the job's tally.
func (s *Store) insertSmallJobRaw(ctx context.Context, r *rawStmts, dc any, sj *smallJob) (int64, []int64, error) {
	j := sj.job
	res, err := r.exec(ctx, dc, insertJobSQL, j.Partner, j.Source, j.FileID, j.FileName, j.Status, int64(j.Priority), int64(j.Total),
		encodeTemplateRefs(j.Templates), ms(sj.now))
	if err != nil {
		return 0, nil, fmt.Errorf("cannot create job: %w", err)
	}
	jobID, err := res.LastInsertId()
	if err != nil {
		return 0, nil, err
	}
	ids := make([]int64, 0, len(sj.msgs))
	for _, c := range sj.chunks {
		c.args[0] = jobID // alwaysShared starts with job_id
		res, err := r.exec(ctx, dc, c.shape.cachedSQL(), c.args...)
		if err != nil {
			return 0, nil, fmt.Errorf("cannot insert messages of job %d: %w", jobID, err)
		}
		// One statement's rows get consecutive rowids (each the table's
		// largest plus one), the last of them reported here.
		last, err := res.LastInsertId()
		if err != nil {
			return 0, nil, fmt.Errorf("cannot read the ids of the messages of job %d: %w", jobID, err)
		}
		for id := last - int64(c.shape.rows) + 1; id <= last; id++ {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return jobID, ids, nil
	}
	if _, err := r.exec(ctx, dc, jobRangeSQL, ids[0], ids[len(ids)-1], jobID); err != nil {
		return 0, nil, fmt.Errorf("cannot record the message range of job %d: %w", jobID, err)
	}
	order, counts := channelCounts(sj.msgs)
	for _, ch := range order {
		if _, err := r.exec(ctx, dc, jobCountSQL, jobID, ch, MsgQueued, int64(counts[ch])); err != nil {
			return 0, nil, fmt.Errorf("cannot tally job %d: %w", jobID, err)
		}
	}
	return jobID, ids, nil
}
