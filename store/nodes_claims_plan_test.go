package store

import (
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
	plan := queryPlan(t, s.writer, releaseRunClaimsSQL, 0, `["node-1"]`)
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
