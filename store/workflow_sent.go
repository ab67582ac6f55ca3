package store

import (
	"context"
	"fmt"
)

// A send step that queued its message is recorded as part of a range of
// runs (workflow_sent_ranges, migration 0053) instead of a workflow_steps
// row per run: the runs of a batch fired in due order are mostly runs
// started together, with consecutive ids, and one job's messages get
// consecutive ids, so a batch's queued steps are a few rows. The steps row
// of each fired run was a sixth of the scheduler's writer time per run
// (workflow/BENCHMARKS.md, session 10). StepsOfRun shows a ranged step as
// the row it replaced: step, time, outcome queued, the message id.

// sentSpan is the most run ids one range spans, so that the ranges holding
// a run are found by the key's prefix: first_run in [id-sentSpan+1, id].
const sentSpan = 4096

// sentChunk is how many ranges one insert statement records.
const sentChunk = 64

// sentStep is a queued send step of a batch recorded in a range: advs[adv]
// queued its message at step, at the batch's time.
type sentStep struct {
	adv  int
	step int64
}

// rangedStep says whether st, a step of a run whose send queued a message,
// is recorded in a range: a queued step at the batch's time without detail
// (every queued step the scheduler makes).
func rangedStep(st RunStep, now int64, msg *Message) bool {
	return msg != nil && st.Outcome == StepQueued && st.Detail == "" && (st.At.IsZero() || ms(st.At) == now)
}

// sentRows returns the range rows (first_run, last_run, step, at,
// first_message) of p's ranged steps, sentChunk rows per slice, given each
// run's message id (msgIDs, by index in p.advs). A range grows while the
// next step is the same step of the next run id with the next message id.
func (p *AdvancePlan) sentRows(msgIDs []int64) [][]any {
	if len(p.sent) == 0 {
		return nil
	}
	at := ms(p.now)
	var out [][]any
	var cur []any
	var first, last, msg, step int64
	flush := func() {
		if cur == nil {
			cur = make([]any, 0, 5*sentChunk)
		}
		cur = append(cur, first, last, step, at, msg)
		if len(cur) == 5*sentChunk {
			out, cur = append(out, cur), nil
		}
	}
	for k, s := range p.sent {
		id, m := p.advs[s.adv].ID, msgIDs[s.adv]
		if k > 0 && s.step == step && id == last+1 && m == msg+(id-first) && id-first < sentSpan {
			last = id
			continue
		}
		if k > 0 {
			flush()
		}
		first, last, msg, step = id, id, m, s.step
	}
	flush()
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sentInsertSQL inserts n ranges.
func sentInsertSQL(n int) string {
	return `INSERT INTO workflow_sent_ranges (first_run, last_run, step, at, first_message) VALUES ` + valuesList(n, 5)
}

// sentStepsOf returns run id's ranged steps, in step order.
func (s *Store) sentStepsOf(ctx context.Context, id int64) ([]RunStep, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT first_run, step, at, first_message FROM workflow_sent_ranges
		WHERE first_run BETWEEN ? AND ? AND last_run >= ? ORDER BY step`, id-sentSpan+1, id, id)
	if err != nil {
		return nil, fmt.Errorf("cannot read the sent steps of run %d: %w", id, err)
	}
	defer rows.Close()
	var out []RunStep
	for rows.Next() {
		var first, step, at, msg int64
		if err := rows.Scan(&first, &step, &at, &msg); err != nil {
			return nil, err
		}
		out = append(out, RunStep{Step: int(step), At: fromMS(at), Outcome: StepQueued, MessageID: msg + id - first})
	}
	return out, rows.Err()
}

// mergeSteps puts ranged steps among a run's recorded steps: a run's steps
// come in step order, and a queued step is the last of its step (the run
// moves on to the next step with it; a deferral of the same step came
// before it).
func mergeSteps(rec, sent []RunStep) []RunStep {
	if len(sent) == 0 {
		return rec
	}
	out := make([]RunStep, 0, len(rec)+len(sent))
	i := 0
	for _, st := range sent {
		for i < len(rec) && rec[i].Step <= st.Step {
			out = append(out, rec[i])
			i++
		}
		out = append(out, st)
	}
	return append(out, rec[i:]...)
}
