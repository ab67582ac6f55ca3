package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// Runs are counted by partner, workflow and status in workflow_run_counts
// (migration 0022) by the statements that move them, not by triggers: a
// new run by the batch that inserts it (events_batch.go, migration 0038),
// a move out of waiting by the statement that makes it (this file,
// migrations 0039 and 0042). Every such move starts from waiting.

const (
	runsLeftSQL    = `UPDATE workflow_run_counts SET n = n - ? WHERE partner = ? AND workflow = ? AND status = 'waiting'`
	runsReachedSQL = `INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (partner, workflow, status) DO UPDATE SET n = workflow_run_counts.n + excluded.n`
)

// countRunsMovedTx moves n runs of a partner's workflow from the waiting
// count to the count of status, in tx.
func countRunsMovedTx(ctx context.Context, tx *sql.Tx, partner, workflow, status string, n int) error {
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, runsLeftSQL, n, partner, workflow); err != nil {
		return fmt.Errorf("cannot count the runs of %s: %w", workflow, err)
	}
	if _, err := tx.ExecContext(ctx, runsReachedSQL, partner, workflow, status, n); err != nil {
		return fmt.Errorf("cannot count the runs of %s: %w", workflow, err)
	}
	return nil
}

// runCount is a number of runs of a partner's workflow that moved from
// waiting to status.
type runCount struct {
	partner, workflow, status string
	n                         int
}

// endedCounts groups the batch's runs that ended (done, suppressed,
// failed) by partner, workflow and status, in that order: one order for
// every node, so that two batches on PostgreSQL lock the count rows alike.
func endedCounts(advs []RunAdvance) ([]runCount, error) {
	type pws struct{ partner, workflow, status string }
	ended := map[pws]int{}
	for i := range advs {
		if advs[i].Status == RunWaiting {
			continue
		}
		if advs[i].Workflow == "" {
			return nil, fmt.Errorf("run %d ends without its workflow: it cannot be counted", advs[i].ID)
		}
		ended[pws{advs[i].Partner, advs[i].Workflow, advs[i].Status}]++
	}
	out := make([]runCount, 0, len(ended))
	for k, n := range ended {
		out = append(out, runCount{k.partner, k.workflow, k.status, n})
	}
	slices.SortFunc(out, func(a, b runCount) int {
		return cmp.Or(cmp.Compare(a.partner, b.partner), cmp.Compare(a.workflow, b.workflow), cmp.Compare(a.status, b.status))
	})
	return out, nil
}

// countEndedTx counts the batch's runs that ended: two statements per
// partner, workflow and status, where a trigger ran two per run. Every run
// of the batch was waiting (the moves checked it).
func (s *Store) countEndedTx(ctx context.Context, tx *sql.Tx, advs []RunAdvance) error {
	ended, err := endedCounts(advs)
	if err != nil {
		return err
	}
	for _, c := range ended {
		if err := countRunsMovedTx(ctx, tx, c.partner, c.workflow, c.status, c.n); err != nil {
			return err
		}
	}
	return nil
}
