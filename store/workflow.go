package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Run statuses. Only waiting runs have a step left; the others are final.
const (
	RunWaiting    = "waiting"
	RunDone       = "done"
	RunCancelled  = "cancelled"
	RunSuppressed = "suppressed"
	RunFailed     = "failed"
)

// Run is one run of a workflow for one contact.
type Run struct {
	ID        int64             `json:"id"`
	Partner   string            `json:"partner"`
	Workflow  string            `json:"workflow"`
	Contact   string            `json:"contact"`
	Email     string            `json:"email,omitempty"`
	Phone     string            `json:"phone,omitempty"`
	Ref       string            `json:"ref,omitempty"`
	Key       string            `json:"key,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
	Status    string            `json:"status"`
	Step      int               `json:"step"`
	DueAt     time.Time         `json:"due_at,omitzero"`
	EventID   int64             `json:"event_id"`
	ExitEvent int64             `json:"exit_event_id,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// RunStep is one executed step of a run.
type RunStep struct {
	Step      int       `json:"step"`
	At        time.Time `json:"at"`
	Outcome   string    `json:"outcome"`
	MessageID int64     `json:"message_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// Step outcomes.
const (
	StepQueued     = "queued"     // a send step queued its message
	StepDeferred   = "deferred"   // a send step waits for the end of quiet hours
	StepWaiting    = "waiting"    // a delay step set the next due time
	StepSuppressed = "suppressed" // the contact is suppressed: the run ended
	StepFailed     = "failed"     // the message could not be made: the run ended
	StepCancelled  = "cancelled"  // cancelled by an exit event or by hand
)

// RunAdvance is what the scheduler did with one due run: the run moves
// from step From to step To with Status and, when still waiting, DueAt.
// Msg is the message a send step queued (nil for none). Steps are the
// outcomes to record; a queued step's message id is filled in. Workflow
// is the run's: a run that ends as done is counted under it (migration
// 0039).
type RunAdvance struct {
	ID        int64
	Partner   string
	Workflow  string
	From      int
	To        int
	Status    string
	DueAt     time.Time
	LastError string
	Msg       *Message
	Steps     []RunStep
	// Due is when the run was due as the scheduler read it (zero if not
	// known): on SQLite the due ranges ending before the batch's last run
	// that hold no waiting run any more are dropped with it
	// (workflow_due.go).
	Due time.Time
}

// ErrRunMoved is returned by AdvanceRuns when a run is no longer where the
// scheduler read it (cancelled meanwhile): nothing of the batch was
// stored, and the scheduler reads it again.
var ErrRunMoved = errors.New("a run changed while its step was executed")

// runColumns are a run's columns, its starting event's addresses and data
// among them (migration 0046), read from runFrom.
const runColumns = `r.id, r.partner, r.workflow, r.contact, e.email, e.phone, e.ref, r.key, e.data, r.status, r.step, r.due_at,
	r.event_id, r.exit_event, r.last_error, r.created_at, r.updated_at`

// runFrom joins each run to the event that started it.
const runFrom = ` FROM workflow_runs r JOIN events e ON e.id = r.event_id`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var data string
	var due, created, updated int64
	if err := sc.Scan(&r.ID, &r.Partner, &r.Workflow, &r.Contact, &r.Email, &r.Phone, &r.Ref, &r.Key, &data, &r.Status,
		&r.Step, &due, &r.EventID, &r.ExitEvent, &r.LastError, &created, &updated); err != nil {
		return Run{}, err
	}
	r.Data = runData(data)
	if r.Status == RunWaiting {
		r.DueAt = fromMS(due)
	}
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(updated)
	return r, nil
}

// NextRunDue returns the earliest due time of a waiting run; ok is false
// when no run waits. It reads one entry of the due index (PostgreSQL) or
// the first due range that holds a waiting run (SQLite: PruneDueRanges
// drops those before it that hold none).
func (s *Store) NextRunDue(ctx context.Context) (due time.Time, ok bool, err error) {
	q := `SELECT MIN(due_at) FROM workflow_runs WHERE status = 'waiting'`
	if !s.pg {
		q = `SELECT MIN(due_at) FROM (` + firstLiveDueSQL + `)` // workflow_due.go
	}
	// Prepared once: the scheduler reads it at every wake, and compiling it
	// each time was a twentieth of the firing benchmark's CPU (which
	// polls it every millisecond).
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("cannot read the next due run: %w", err)
	}
	var v sql.NullInt64
	if err := st.QueryRowContext(ctx).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("cannot read the next due run: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(v.Int64), true, nil
}

// DueRuns returns up to limit waiting runs due at or before now, in due
// order, with what firing them needs: id, partner, workflow, contact,
// addresses, key, data, step and due time (the times of creation and
// update, the events and the last error are left zero; scanning every
// column was a third of reading a batch).
func (s *Store) DueRuns(ctx context.Context, now time.Time, limit int) ([]Run, error) {
	if !s.pg {
		return s.dueRunsRaw(ctx, limit, ms(now), math.MinInt64, 0)
	}
	return s.dueRuns(ctx, dueRunsSQL, ms(now), limit)
}

// DueRunsAfter is DueRuns for the runs after run after in due order (due
// time, then id): the next batch, read while the previous one is stored.
func (s *Store) DueRunsAfter(ctx context.Context, now time.Time, after Run, limit int) ([]Run, error) {
	if !s.pg {
		return s.dueRunsRaw(ctx, limit, ms(now), ms(after.DueAt), after.ID)
	}
	return s.dueRuns(ctx, dueRunsAfterSQL, ms(now), ms(after.DueAt), after.ID, limit)
}

// dueRunsRaw is dueRuns on SQLite, through the due ranges
// (workflow_due_raw.go): up to limit runs due by now after (afterDue,
// afterID).
func (s *Store) dueRunsRaw(ctx context.Context, limit int, now, afterDue, afterID int64) ([]Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := s.rawDue()
	if err != nil {
		return nil, fmt.Errorf("cannot read due runs: %w", err)
	}
	runs, err := c.runs(limit, now, afterDue, afterID)
	if err != nil {
		return nil, fmt.Errorf("cannot read due runs: %w", err)
	}
	return runs, nil
}

func (s *Store) dueRuns(ctx context.Context, q string, args ...any) ([]Run, error) {
	limit := args[len(args)-1].(int)
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read due runs: %w", err)
	}
	defer rows.Close()
	return scanDueRuns(rows, limit)
}

// scanDueRuns reads up to limit waiting runs of dueRunsSQL's columns.
func scanDueRuns(rows *sql.Rows, limit int) ([]Run, error) {
	out := make([]Run, 0, min(limit, 4096))
	for rows.Next() {
		r := Run{Status: RunWaiting}
		var data string
		var due int64
		if err := rows.Scan(&r.ID, &r.Partner, &r.Workflow, &r.Contact, &r.Email, &r.Phone, &r.Ref, &r.Key, &data, &r.Step, &due); err != nil {
			return nil, err
		}
		r.Data, r.DueAt = runData(data), fromMS(due)
		out = append(out, r)
	}
	return out, rows.Err()
}

const (
	// The addresses and data are the starting event's (migration 0046).
	dueRunsSQL = `SELECT r.id, r.partner, r.workflow, r.contact, e.email, e.phone, e.ref, r.key, e.data, r.step, r.due_at
	FROM workflow_runs r INDEXED BY workflow_runs_due JOIN events e ON e.id = r.event_id
	WHERE r.status = 'waiting' AND r.due_at <= ? ORDER BY r.due_at, r.id LIMIT ?`
	dueRunsAfterSQL = `SELECT r.id, r.partner, r.workflow, r.contact, e.email, e.phone, e.ref, r.key, e.data, r.step, r.due_at
	FROM workflow_runs r INDEXED BY workflow_runs_due JOIN events e ON e.id = r.event_id
	WHERE r.status = 'waiting' AND r.due_at <= ? AND (r.due_at, r.id) > (?, ?)
	ORDER BY r.due_at, r.id LIMIT ?`
)

const (
	runAdvanceSQL = `UPDATE workflow_runs SET step = ?, status = ?, due_at = ?, last_error = ?, updated_at = ?
		WHERE status = 'waiting' AND step = ? AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`
	// runAdvanceRangeSQL moves a range of consecutive run ids (runRanges),
	// every one of them in the move: SQLite only.
	runAdvanceRangeSQL = `UPDATE workflow_runs SET step = ?, status = ?, due_at = ?, last_error = ?, updated_at = ?
		WHERE status = 'waiting' AND step = ? AND id BETWEEN ? AND ?`
)

// stepChunk is how many steps one insert statement records.
const stepChunk = 100

// stepInsertSQL inserts n steps.
func stepInsertSQL(n int) string {
	if n == stepChunk {
		return stepChunkSQL
	}
	return `INSERT INTO workflow_steps (run_id, step, at, outcome, message_id, detail) VALUES ` + valuesList(n, 6)
}

// stepChunkSQL is the statement of a full chunk of steps, built once.
var stepChunkSQL = `INSERT INTO workflow_steps (run_id, step, at, outcome, message_id, detail) VALUES ` + valuesList(stepChunk, 6)

// AdvanceRuns stores what the scheduler did with a batch of due runs in
// one transaction: every run moves on, and the messages its send steps
// made are queued as one job per partner with source workflow. Moving the
// run and queuing its message commit together, so a crash at any moment
// leaves either both or neither: a step never queues twice. A run that is
// no longer waiting at the step read (cancelled meanwhile) fails the whole
// batch with ErrRunMoved and nothing is stored.
func (s *Store) AdvanceRuns(ctx context.Context, advs []RunAdvance, now time.Time) ([]Job, error) {
	return s.StoreAdvance(ctx, s.PlanAdvance(advs, now))
}

// AdvancePlan is a batch of RunAdvance with the statements and arguments
// that store it, built by PlanAdvance before the writer is needed.
type AdvancePlan struct {
	advs      []RunAdvance
	now       time.Time
	partners  []string
	byPartner map[string][]int // partner → indexes in advs of runs with a message
	smalls    []*smallJob      // one job per partner, in partners' order
	moves     []runMove
	qs        []string // the statements to prepare
	// steps holds the step inserts' arguments, stepChunk rows per
	// statement; a queued step's message id, known once its job is
	// written, goes at steps[mids[k].arg] from advs[mids[k].adv].
	steps [][]any
	mids  []struct{ arg, adv int }
	// sent are the queued steps recorded as ranges (workflow_sent.go)
	// instead of steps rows.
	sent []sentStep
	// dueRows are the due ranges of the runs set to wait again, on
	// SQLite (workflow_due.go), as insert arguments.
	dueRows [][]any
	// passed is the batch's last run in due order (due time, id) when
	// known, on SQLite: the due ranges ending before it that hold no
	// waiting run go with the batch.
	passed []any
}

// runMove is the runs of a batch that move the same way (most of a batch:
// from its send step to done), moved by one statement.
type runMove struct {
	from, to  int
	status    string
	due       int64
	lastError string
	ids       []int64
	list      string // ids as a JSON array, for json_each
	// ranges, on SQLite, are ids as ranges of consecutive ids (first,
	// last) when they are few (runRanges), else nil.
	ranges [][2]int64
}

// runRanges returns ids, sorted, as ranges of consecutive ids, or nil when
// there would be more than one range per eight ids. Runs started together
// (an events file, a request) and due together are fired in id order: a
// batch's move is then a few ranges, each moved by a range scan of the
// table instead of a json_each lookup per id (workflow/BENCHMARKS.md,
// session 9).
func runRanges(ids []int64) [][2]int64 {
	sorted := slices.Sorted(slices.Values(ids))
	var out [][2]int64
	for i, id := range sorted {
		if i > 0 && id == sorted[i-1]+1 {
			out[len(out)-1][1] = id
			continue
		}
		if (len(out)+1)*8 > len(ids) {
			return nil
		}
		out = append(out, [2]int64{id, id})
	}
	return out
}

// PlanAdvance builds what AdvanceRuns writes for advs at now: the
// messages' insert statements, the moves, the steps' rows. The scheduler
// builds it while the previous batch is stored, so that the writer's
// transaction only runs statements.
func (s *Store) PlanAdvance(advs []RunAdvance, now time.Time) *AdvancePlan {
	p := &AdvancePlan{advs: advs, now: now, byPartner: map[string][]int{}}
	for i := range advs {
		if advs[i].Msg == nil {
			continue
		}
		pt := advs[i].Partner
		if p.byPartner[pt] == nil {
			p.partners = append(p.partners, pt)
		}
		p.byPartner[pt] = append(p.byPartner[pt], i)
	}
	advSQL := runAdvanceSQL
	if s.pg {
		advSQL = runAdvancePGSQL // workflow_claim_pg.go: drops the run's claim
	}
	p.qs = []string{advSQL, runsLeftSQL, runsReachedSQL}
	p.smalls = make([]*smallJob, len(p.partners))
	for k, pt := range p.partners {
		msgs := make([]Message, len(p.byPartner[pt]))
		for j, i := range p.byPartner[pt] {
			msgs[j] = *advs[i].Msg
		}
		j := Job{Partner: pt, Source: SourceWorkflow, Priority: PriorityTransactional, Status: JobQueued, Total: len(msgs)}
		p.smalls[k] = s.newSmallJob(j, msgs, now)
		p.qs = append(p.qs, p.smalls[k].queries()...)
	}
	type moveKey struct {
		from, to  int
		status    string
		due       int64
		lastError string
	}
	at := map[moveKey]int{}
	for i := range advs {
		a := &advs[i]
		m := moveKey{from: a.From, to: a.To, status: a.Status, lastError: a.LastError}
		if a.Status == RunWaiting {
			m.due = ms(a.DueAt)
		}
		k, ok := at[m]
		if !ok {
			k = len(p.moves)
			at[m] = k
			p.moves = append(p.moves, runMove{from: m.from, to: m.to, status: m.status, due: m.due, lastError: m.lastError})
		}
		p.moves[k].ids = append(p.moves[k].ids, a.ID)
	}
	if !s.pg {
		p.passed = passedRuns(advs)
	}
	for k := range p.moves {
		if !s.pg && p.moves[k].status == RunWaiting {
			// A run set to wait again gets a due range (workflow_due.go).
			p.dueRows = dueRangeRows(p.dueRows, p.moves[k].due, p.moves[k].ids)
		}
		if !s.pg {
			if p.moves[k].ranges = runRanges(p.moves[k].ids); p.moves[k].ranges != nil {
				continue
			}
		}
		list, _ := json.Marshal(p.moves[k].ids)
		p.moves[k].list = string(list)
	}
	// Steps go in multi-row statements of stepChunk rows (and one for the
	// rest): one statement per step was a third of a batch's time.
	const width = 6 * stepChunk
	var args []any
	for i := range advs {
		for _, st := range advs[i].Steps {
			if rangedStep(st, ms(now), advs[i].Msg) {
				p.sent = append(p.sent, sentStep{adv: i, step: int64(st.Step)})
				continue
			}
			if args == nil {
				args = make([]any, 0, width)
			}
			t := st.At
			if t.IsZero() {
				t = now
			}
			if st.Outcome == StepQueued {
				p.mids = append(p.mids, struct{ arg, adv int }{len(p.steps)*width + len(args) + 4, i})
			}
			args = append(args, advs[i].ID, int64(st.Step), ms(t), st.Outcome, int64(0), st.Detail)
			if len(args) == width {
				p.steps, args = append(p.steps, args), nil
			}
		}
	}
	if len(args) > 0 {
		p.steps = append(p.steps, args)
	}
	for _, a := range p.steps {
		p.qs = append(p.qs, stepInsertSQL(len(a)/6))
	}
	return p
}

// StoreAdvance stores a planned batch (AdvanceRuns).
func (s *Store) StoreAdvance(ctx context.Context, p *AdvancePlan) ([]Job, error) {
	return retryDeadlocks(s, func() ([]Job, error) { // workflow_pg.go
		return s.advanceRuns(ctx, p)
	})
}

func (s *Store) advanceRuns(ctx context.Context, p *AdvancePlan) (jobs []Job, err error) {
	if !s.pg {
		return s.advanceSQLite(ctx, p) // workflow_raw.go
	}
	ctx = context.WithoutCancel(ctx) // see acceptEvents: a bounded batch, run to its end
	if err := s.prepare(ctx, p.qs...); err != nil {
		return nil, err
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	adv, err := s.txStmt(ctx, tx, p.qs[0])
	if err != nil {
		return nil, err
	}
	// The count each move changed says whether each of its runs was still
	// where the scheduler read it.
	for _, m := range p.moves {
		res, err := adv.ExecContext(ctx, m.to, m.status, m.due, m.lastError, ms(p.now), m.from, m.list)
		if err != nil {
			return nil, fmt.Errorf("cannot move runs on: %w", err)
		}
		if n, _ := res.RowsAffected(); n != int64(len(m.ids)) {
			return nil, fmt.Errorf("%d of %d runs: %w", int64(len(m.ids))-n, len(m.ids), ErrRunMoved)
		}
	}
	if err := s.countEndedTx(ctx, tx, p.advs); err != nil {
		return nil, err
	}
	msgIDs := make([]int64, len(p.advs))
	for k, pt := range p.partners {
		id, ids, err := s.insertSmallJobTx(ctx, tx, p.smalls[k])
		if err != nil {
			return nil, err
		}
		for j, i := range p.byPartner[pt] {
			msgIDs[i] = ids[j]
		}
		job := p.smalls[k].job
		job.ID, job.CreatedAt = id, p.now
		jobs = append(jobs, job)
	}
	const width = 6 * stepChunk
	for _, m := range p.mids {
		p.steps[m.arg/width][m.arg%width] = msgIDs[m.adv]
	}
	for _, args := range p.steps {
		st, err := s.txStmt(ctx, tx, stepInsertSQL(len(args)/6))
		if err != nil {
			return nil, err
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return nil, fmt.Errorf("cannot record the steps of runs: %w", err)
		}
	}
	for _, args := range p.sentRows(msgIDs) {
		if _, err := tx.ExecContext(ctx, sentInsertSQL(len(args)/5), args...); err != nil {
			return nil, fmt.Errorf("cannot record the sent steps of runs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if len(jobs) > 0 {
		s.jobsQueued()
	}
	return jobs, nil
}

// CancelRun cancels one waiting run of a partner's workflow by hand. A run
// of another partner or workflow is ErrNotFound; a run that already ended
// is returned as it is, with changed false.
func (s *Store) CancelRun(ctx context.Context, partner, workflow string, id int64, now time.Time) (r Run, changed bool, err error) {
	n, err := s.cancelRuns(ctx, partner, workflow, now, `UPDATE workflow_runs SET status = 'cancelled', updated_at = ?
		WHERE id = ? AND partner = ? AND workflow = ? AND status = 'waiting'`, ms(now), id, partner, workflow)
	if err != nil {
		return Run{}, false, fmt.Errorf("cannot cancel run %d: %w", id, err)
	}
	if n == 1 {
		_ = s.recordStep(ctx, id, StepCancelled, "cancelled through the API", now)
	}
	r, err = s.RunOf(ctx, partner, id)
	if err != nil {
		return Run{}, false, err
	}
	if r.Workflow != workflow {
		return Run{}, false, ErrNotFound
	}
	return r, n == 1, nil
}

// cancelRuns runs q, which cancels waiting runs of one partner's
// workflow, and counts them in the same transaction (no trigger counts a
// status change since migration 0042).
func (s *Store) cancelRuns(ctx context.Context, partner, workflow string, now time.Time, q string, args ...any) (int, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if err := countRunsMovedTx(ctx, tx, partner, workflow, RunCancelled, int(n)); err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

// recordStep notes a cancellation in a run's steps, at its current step.
func (s *Store) recordStep(ctx context.Context, id int64, outcome, detail string, now time.Time) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO workflow_steps (run_id, step, at, outcome, detail)
		SELECT id, step, ?, ?, ? FROM workflow_runs WHERE id = ?`, ms(now), outcome, detail, id)
	return err
}

// CancelRunsByKey cancels every waiting run of a partner's workflow that
// carries key and returns how many.
func (s *Store) CancelRunsByKey(ctx context.Context, partner, workflow, key string, now time.Time) (int, error) {
	n, err := s.cancelRuns(ctx, partner, workflow, now, `UPDATE workflow_runs SET status = 'cancelled', updated_at = ?
		WHERE partner = ? AND workflow = ? AND key = ? AND status = 'waiting'`, ms(now), partner, workflow, key)
	if err != nil {
		return 0, fmt.Errorf("cannot cancel runs of %s: %w", workflow, err)
	}
	return n, nil
}

// RunOf returns one run of a partner ("" for any partner); another
// partner's run is ErrNotFound.
func (s *Store) RunOf(ctx context.Context, partner string, id int64) (Run, error) {
	r, err := scanRun(s.reader.QueryRowContext(ctx, `SELECT `+runColumns+runFrom+` WHERE r.id = ? AND (? = '' OR r.partner = ?)`,
		id, partner, partner))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, ErrNotFound
	}
	if err != nil {
		return Run{}, fmt.Errorf("cannot read run %d: %w", id, err)
	}
	return r, nil
}

// StepsOfRun lists a run's executed steps in order, those recorded as
// ranges of runs (migration 0053) among them.
func (s *Store) StepsOfRun(ctx context.Context, id int64) ([]RunStep, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT step, at, outcome, message_id, detail FROM workflow_steps
		WHERE run_id = ? ORDER BY rowid`, id)
	if err != nil {
		return nil, fmt.Errorf("cannot read the steps of run %d: %w", id, err)
	}
	defer rows.Close()
	var out []RunStep
	for rows.Next() {
		var st RunStep
		var at int64
		if err := rows.Scan(&st.Step, &at, &st.Outcome, &st.MessageID, &st.Detail); err != nil {
			return nil, err
		}
		st.At = fromMS(at)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sent, err := s.sentStepsOf(ctx, id) // workflow_sent.go
	if err != nil {
		return nil, err
	}
	return mergeSteps(out, sent), nil
}

// RunCounts returns how many runs each workflow of a partner ("" for every
// partner) has in each status: partner → workflow → status → n.
func (s *Store) RunCounts(ctx context.Context, partner string) (map[string]map[string]map[string]int, error) {
	// workflow_run_counts is kept by triggers (migration 0022): a few rows,
	// however many runs there are.
	rows, err := s.reader.QueryContext(ctx, `SELECT partner, workflow, status, n FROM workflow_run_counts
		WHERE (? = '' OR partner = ?) AND n > 0`, partner, partner)
	if err != nil {
		return nil, fmt.Errorf("cannot count runs: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]map[string]int{}
	for rows.Next() {
		var p, w, st string
		var n int
		if err := rows.Scan(&p, &w, &st, &n); err != nil {
			return nil, err
		}
		if out[p] == nil {
			out[p] = map[string]map[string]int{}
		}
		if out[p][w] == nil {
			out[p][w] = map[string]int{}
		}
		out[p][w][st] = n
	}
	return out, rows.Err()
}

// BeginRunBurst tells the store that many due runs are about to be fired
// batch after batch: until EndRunBurst the writer checkpoints its WAL as
// rarely as while a file job is written (jobwriter_wal.go), so that the
// same pages of the runs, messages and steps tables are not copied back at
// every 4 MB.
func (s *Store) BeginRunBurst(ctx context.Context) { s.beginBulk(context.WithoutCancel(ctx)) }

// EndRunBurst ends a BeginRunBurst and checkpoints what the burst wrote.
func (s *Store) EndRunBurst(ctx context.Context) { s.endBulk(context.WithoutCancel(ctx)) }
