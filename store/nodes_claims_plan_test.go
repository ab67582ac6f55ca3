package store

import (
	"context"
	"strings"
	"testing"
)

// A restart after a crash frees the run claims of the node's earlier lives
// through the partial index of claimed runs (migration 0059), not by
// reading every run: SQLite has no due index since 0054, and a partial
// index serves only a WHERE that implies its condition.
func TestReleasingPreviousRunClaimsUsesTheClaimedIndex(t *testing.T) {
	skipOnPostgres(t, "SQLite's query plan; PostgreSQL's due index serves the UPDATE (its 0059 adds nothing)")
	s := openTest(t)
	rows, err := s.writer.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+releaseRunClaimsSQL, 0, `["node-1"]`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(plan, "; ")
	if !strings.Contains(all, "SEARCH workflow_runs USING INDEX workflow_runs_claimed (claimed_by=?)") {
		t.Errorf("the UPDATE does not search the claimed runs' index: %s", all)
	}
	for _, p := range plan {
		if strings.HasPrefix(p, "SCAN workflow_runs") {
			t.Errorf("the UPDATE scans workflow_runs: %s", all)
		}
	}
}
