package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// On SQLite the waiting runs are found by due ranges (workflow_due_ranges,
// migration 0054) instead of a partial index of every waiting run: an
// entry (due_at, first_run, last_run) says that the runs with ids from
// first_run to last_run that still wait with that due time are due then.
// Runs started together with the same due time (an event batch's insert)
// are one entry, a run the scheduler sets to wait again (a delay, quiet
// hours) is in an entry with the runs of its batch that wait until the
// same time. Moving a fired run on then rewrites its row alone: the
// index's delete was nearly half of a fired run's move and its insert a
// part of every started run (workflow/BENCHMARKS.md, session 10).
//
// An entry is never changed but to cover more runs; runs that no longer
// wait (fired, cancelled, exited) stay inside it and are skipped by the
// reads, which check each run's status and due time. PruneDueRanges drops
// the entries, due by now, that hold no waiting run any more.
//
// PostgreSQL keeps the partial index workflow_runs_due, which its claims
// (workflow_claim_pg.go) lock rows through; its table of due ranges stays
// empty.

// dueChunk is how many entries one insert statement writes.
const dueChunk = 64

// dueRangeInsertSQL writes n entries; an entry of the same due time and
// first run (a run set to wait again until the due time it started with)
// keeps the longer range.
func dueRangeInsertSQL(n int) string {
	return `INSERT INTO workflow_due_ranges (due_at, first_run, last_run) VALUES ` + valuesList(n, 3) + `
		ON CONFLICT (due_at, first_run) DO UPDATE SET last_run = CASE WHEN excluded.last_run > last_run THEN excluded.last_run ELSE last_run END`
}

// dueRangeRows returns the entries of runs waiting until due (ids in any
// order), as insert arguments of dueChunk entries per slice, appended to
// out: one entry per stretch of consecutive ids.
func dueRangeRows(out [][]any, due int64, ids []int64) [][]any {
	sorted := slices.Sorted(slices.Values(ids))
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[j-1]+1 {
			j++
		}
		out = appendDueRow(out, due, sorted[i], sorted[j-1])
		i = j
	}
	return out
}

func appendDueRow(out [][]any, due, first, last int64) [][]any {
	if len(out) == 0 || len(out[len(out)-1]) == 3*dueChunk {
		out = append(out, make([]any, 0, 3*dueChunk))
	}
	out[len(out)-1] = append(out[len(out)-1], due, first, last)
	return out
}

// recordDueRanges writes the entries of the batch's pending runs (before
// flushRuns clears them), on SQLite: one per stretch of consecutive
// waiting runs with the same due time, mostly one per insert.
func (b *eventBatch) recordDueRanges() error {
	if b.conn == nil {
		return nil // PostgreSQL: the partial index
	}
	// One prepared single-row statement per entry: a flush mostly has one,
	// and preparing a statement of its size each time was a twentieth of
	// the writer's time per event.
	record := func(due, first, last int64) error {
		if _, err := b.stmt(dueRangeInsertSQL(1)).ExecContext(b.ctx, due, first, last); err != nil {
			return fmt.Errorf("cannot record when runs are due: %w", err)
		}
		return nil
	}
	var due, first, last int64
	open := false
	for i := 0; i < b.runRows*runCols; i += runCols {
		if b.runArgs[i+5].(string) != RunWaiting {
			continue
		}
		id, d := b.runArgs[i].(int64), b.runArgs[i+7].(int64)
		if open && d == due && id == last+1 {
			last = id
			continue
		}
		if open {
			if err := record(due, first, last); err != nil {
				return err
			}
		}
		due, first, last, open = d, id, id, true
	}
	if open {
		return record(due, first, last)
	}
	return nil
}

// liveDue is the condition that a due range d holds a run that still
// waits with its due time.
const liveDue = `EXISTS (SELECT 1 FROM workflow_runs r NOT INDEXED WHERE r.id BETWEEN d.first_run AND d.last_run
	AND r.status = 'waiting' AND r.due_at = d.due_at)`

// firstLiveDueSQL is the first due range, in due order, that holds a
// waiting run. Its last run is looked at first: while the scheduler fires
// a range, the range's first runs no longer wait and its last ones do.
const firstLiveDueSQL = `SELECT d.due_at, d.first_run FROM workflow_due_ranges d
	WHERE EXISTS (SELECT 1 FROM workflow_runs r WHERE r.id = d.last_run AND r.status = 'waiting' AND r.due_at = d.due_at)
	OR ` + liveDue + `
	ORDER BY d.due_at, d.first_run LIMIT 1`

// passedDueSQL drops the due ranges that end at or before the run (?1,
// ?2) in due order and hold no waiting run: a batch's writes drop the ranges the
// scheduler has fired, up to the batch's last run, so that the ranges
// before the next due run stay few (NextRunDue reads past those). Each is
// read through once, when a batch passes its end; the ranges still
// holding a waiting run (a run set to wait until now, or due in the past
// when started) stop at that run.
const passedDueSQL = `DELETE FROM workflow_due_ranges AS d WHERE d.due_at <= ?1 AND (d.due_at < ?1 OR d.last_run <= ?2)
	AND NOT ` + liveDue

// passedRuns returns the last run of advs in due order (the due time it
// was read with, its id) as passedDueSQL's arguments, or nil when a run's
// due time is not known.
func passedRuns(advs []RunAdvance) []any {
	var due, id int64
	for i, a := range advs {
		if a.Due.IsZero() {
			return nil
		}
		if d := ms(a.Due); i == 0 || d > due || (d == due && a.ID > id) {
			due, id = d, a.ID
		}
	}
	if len(advs) == 0 {
		return nil
	}
	return []any{due, id}
}

// PruneDueRanges drops the due ranges that hold no waiting run any more
// (fired, cancelled or exited): those due by now, and those before the
// first range that holds one. The scheduler calls it once it has fired
// what was due, so that its reads and NextRunDue do not meet them again.
// Nothing on PostgreSQL.
func (s *Store) PruneDueRanges(ctx context.Context, now time.Time) error {
	if s.pg {
		return nil
	}
	firstDue, firstRun := int64(math.MaxInt64), int64(0)
	err := s.reader.QueryRowContext(ctx, firstLiveDueSQL).Scan(&firstDue, &firstRun)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("cannot read the due ranges: %w", err)
	}
	// Most calls find nothing to drop: no write then.
	const before = `(d.due_at <= ? OR (d.due_at < ? OR (d.due_at = ? AND d.first_run < ?)))`
	var one int
	err = s.reader.QueryRowContext(ctx, `SELECT 1 FROM workflow_due_ranges d WHERE `+before+` LIMIT 1`,
		ms(now), firstDue, firstDue, firstRun).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the due ranges: %w", err)
	}
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM workflow_due_ranges AS d WHERE `+before+` AND NOT `+liveDue,
		ms(now), firstDue, firstDue, firstRun); err != nil {
		return fmt.Errorf("cannot drop the due ranges of fired runs: %w", err)
	}
	return nil
}
