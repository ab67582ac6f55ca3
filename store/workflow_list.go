package store

import (
	"context"
	"fmt"
)

// A workflow's runs are listed in id order. Since migration 0051 no index
// holds them in that order (the list index was a fourth B-tree entry per
// started run; workflow/BENCHMARKS.md, session 10), so a page reads the
// runs table itself, id window after id window, checking each run's
// partner and workflow: a page costs at most listScanIDs run ids read,
// whatever the table holds, and says where it stopped. A page can
// therefore hold fewer runs than asked and still not be the last, when
// the workflow's runs are sparse among all runs. The email filter reads
// the contact index instead, which holds a contact's runs of a workflow
// in id order.

// listScanIDs is how many run ids one page reads at most.
var listScanIDs int64 = 50_000 // a variable for tests

// RunFilter selects runs of one workflow for ListRuns; empty fields match
// all. After is the cursor: only runs with a larger id.
type RunFilter struct {
	Partner  string
	Workflow string
	Status   string
	Email    string
	Key      string
	After    int64
	Limit    int
}

const (
	runsMaxIDSQL = `SELECT COALESCE(MAX(id), 0) FROM workflow_runs`
	// The partner is compared as an expression so that the id window is
	// read from the table rather than all of the workflow's runs from a
	// contact index (then sorted): PostgreSQL's, and SQLite's before 0060.
	runsWindowSQL = `SELECT ` + runColumns + runFrom + `
		WHERE r.id > ? AND r.id <= ? AND r.partner || '' = ? AND r.workflow = ? AND (? = '' OR r.status = ?)
		AND (? = '' OR r.key = ?) ORDER BY r.id LIMIT ?`
	// A run with an email has it as its contact (Event.Contact).
	runsOfEmailSQL = `SELECT ` + runColumns + runFrom + `
		WHERE r.partner = ? AND r.workflow = ? AND r.contact = 'email:' || CAST(? AS TEXT) AND (? = '' OR r.status = ?)
		AND (? = '' OR r.key = ?) AND r.id > ? ORDER BY r.id LIMIT ?`
	// On SQLite the contact's runs are found by its key (keyhash.go): in
	// the settled level, or among the runs after the lowest of their
	// ranges' marks (the recent level is the writer's, in memory; a few
	// ten thousand rows at most).
	runsOfEmailSQLite = `SELECT ` + runColumns + runFrom + `
		WHERE (r.id IN (SELECT run FROM run_keys WHERE hash = ?) OR r.id > (SELECT COALESCE(MIN(upto), 0) FROM key_marks WHERE kind = 1)) AND r.partner = ? AND r.workflow = ? AND r.contact = 'email:' || CAST(? AS TEXT) AND (? = '' OR r.status = ?)
		AND (? = '' OR r.key = ?) AND r.id > ? ORDER BY r.id LIMIT ?`
)

// ListRunsPage returns a page of a workflow's runs in id order, and the
// cursor of the next page (0 when no run can follow): the last run's id
// when the page is full, else the last id it read when it stopped at
// listScanIDs ids before the table's end.
func (s *Store) ListRunsPage(ctx context.Context, f RunFilter) (runs []Run, next int64, err error) {
	if f.Limit <= 0 {
		return nil, 0, nil
	}
	if f.Email != "" {
		args := []any{f.Partner, f.Workflow, f.Email, f.Status, f.Status, f.Key, f.Key, f.After, f.Limit}
		q := runsOfEmailSQL
		if !s.pg {
			key := runKeyOf(f.Partner, f.Workflow, "email:"+f.Email)
			q, args = runsOfEmailSQLite, append([]any{key}, args...)
		}
		runs, err = s.listRuns(ctx, f, q, args...)
		if err == nil && len(runs) == f.Limit {
			next = runs[len(runs)-1].ID
		}
		return runs, next, err
	}
	var last int64
	if err := s.reader.QueryRowContext(ctx, runsMaxIDSQL).Scan(&last); err != nil {
		return nil, 0, fmt.Errorf("cannot list runs of %s: %w", f.Workflow, err)
	}
	upto := min(last, f.After+listScanIDs)
	if upto <= f.After {
		return nil, 0, nil
	}
	runs, err = s.listRuns(ctx, f, runsWindowSQL, f.After, upto, f.Partner, f.Workflow, f.Status, f.Status, f.Key, f.Key, f.Limit)
	switch {
	case err != nil:
		return nil, 0, err
	case len(runs) == f.Limit:
		next = runs[len(runs)-1].ID
	case upto < last:
		next = upto
	}
	return runs, next, nil
}

// ListRuns returns up to f.Limit of a workflow's runs in id order, reading
// page after page (ListRunsPage) as far as it takes: for tools and tests,
// not for a request.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	var out []Run
	for len(out) < f.Limit {
		pf := f
		pf.Limit = f.Limit - len(out)
		page, next, err := s.ListRunsPage(ctx, pf)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == 0 {
			break
		}
		f.After = next
	}
	return out, nil
}

func (s *Store) listRuns(ctx context.Context, f RunFilter, q string, args ...any) ([]Run, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list runs of %s: %w", f.Workflow, err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
