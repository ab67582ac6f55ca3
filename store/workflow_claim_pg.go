package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Several nodes on PostgreSQL run a workflow scheduler each over the same
// runs. Instead of every node reading the same due runs, rendering them
// and all but one failing their batch with ErrRunMoved, a node claims a
// batch (ClaimDueRuns: claimed_by, claimed_until, migration 0035) and
// renders only the runs it holds; moving a run on clears its claim
// (runAdvancePGSQL). A claim that lapsed is a node that stopped, and its
// runs go to whichever node claims next. One node on SQLite reads its due
// runs with DueRuns and never claims.

// claimDueRunsPGSQL claims, in due order, waiting runs due at ?3 that no
// other node holds (a lapsed claim, or the claiming node's own from a batch
// that failed), skipping the runs another node is claiming or moving at
// this moment.
const claimDueRunsPGSQL = `WITH c AS (
	SELECT id FROM workflow_runs WHERE status = 'waiting' AND due_at <= ?3 AND (claimed_until <= ?3 OR claimed_by = ?1)
	ORDER BY due_at, id LIMIT ?4 FOR UPDATE SKIP LOCKED)
UPDATE workflow_runs r SET claimed_by = ?1, claimed_until = ?2 FROM c, events e WHERE r.id = c.id AND e.id = r.event_id
RETURNING r.id, r.partner, r.workflow, r.contact, e.email, e.phone, e.ref, r.key, e.data, r.step, r.due_at`

// ClaimDueRuns is DueRuns for one of several nodes: on PostgreSQL it
// claims up to limit due runs for node until until and returns them in due
// order; two nodes claiming at once get different runs. On SQLite (one
// node) it is DueRuns.
func (s *Store) ClaimDueRuns(ctx context.Context, node string, now, until time.Time, limit int) ([]Run, error) {
	if !s.pg {
		return s.DueRuns(ctx, now, limit)
	}
	rows, err := s.writer.QueryContext(ctx, claimDueRunsPGSQL, node, ms(until), ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot claim due runs: %w", err)
	}
	defer rows.Close()
	out, err := scanDueRuns(rows, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot claim due runs: %w", err)
	}
	// RETURNING has no order: the scheduler fires in due order.
	slices.SortFunc(out, func(a, b Run) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return int(min(max(a.ID-b.ID, -1), 1))
	})
	return out, nil
}

// NextRunClaimEnd returns, on PostgreSQL, when the earliest claim of
// another node than node on a run due at now lapses: a scheduler that
// found every due run held by other nodes sleeps until then (or until
// woken), not in a loop. ok is false when no due run is held by another
// node, and always on SQLite.
func (s *Store) NextRunClaimEnd(ctx context.Context, node string, now time.Time) (until time.Time, ok bool, err error) {
	if !s.pg {
		return time.Time{}, false, nil
	}
	var v sql.NullInt64
	if err := s.writer.QueryRowContext(ctx, `SELECT MIN(claimed_until) FROM workflow_runs
		WHERE status = 'waiting' AND due_at <= ? AND claimed_until > ? AND claimed_by <> ?`, ms(now), ms(now), node).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("cannot read the claims on due runs: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(v.Int64), true, nil
}

// runAdvancePGSQL is runAdvanceSQL on PostgreSQL: moving a run on also
// drops its claim, so that its next step is any node's as soon as due.
const runAdvancePGSQL = `UPDATE workflow_runs SET step = ?, status = ?, due_at = ?, last_error = ?, updated_at = ?,
		claimed_by = '', claimed_until = 0
		WHERE status = 'waiting' AND step = ? AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`
