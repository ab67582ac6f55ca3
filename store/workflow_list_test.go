package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Without the list index (migration 0051) a page of a workflow's runs
// reads a window of run ids: a page of a workflow whose runs are sparse
// holds fewer runs than asked and says where to go on, and following the
// cursor gives every run of the workflow once, in id order, and none of
// another workflow's.
func TestListRunsPageStopsAtItsWindowAndGoesOn(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	defer func(n int64) { listScanIDs = n }(listScanIDs)
	listScanIDs = 7
	var ws []EventWrite
	for k := range 30 {
		ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", k), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)}, {Workflow: "other", Step: 1, DueAt: now.Add(time.Hour)}}})
	}
	res, err := s.AcceptEvents(ctx, ws, now)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, r := range res {
		want = append(want, r.Started[0])
	}
	var got []int64
	var after int64
	short := false
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the pages do not end")
		}
		page, next, err := s.ListRunsPage(ctx, RunFilter{Partner: "acme", Workflow: "welcome", After: after, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.Workflow != "welcome" || r.ID <= after {
				t.Fatalf("page after %d has run %+v", after, r)
			}
			got = append(got, r.ID)
		}
		if len(page) == 5 && next != page[4].ID {
			t.Fatalf("a full page's cursor is %d, not its last run %d", next, page[4].ID)
		}
		if len(page) < 5 && next != 0 {
			short = true
		}
		if next == 0 {
			break
		}
		after = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged runs %v, want %v", got, want)
	}
	if !short {
		t.Error("no page stopped at its window before it was full")
	}
	all, err := s.ListRuns(ctx, RunFilter{Partner: "acme", Workflow: "welcome", Limit: 100})
	if err != nil || len(all) != 30 {
		t.Fatalf("ListRuns = %d runs, %v", len(all), err)
	}
	byEmail, next, err := s.ListRunsPage(ctx, RunFilter{Partner: "acme", Workflow: "other", Email: "u17@example.com", Limit: 5})
	if err != nil || len(byEmail) != 1 || byEmail[0].ID != res[17].Started[1] || next != 0 {
		t.Fatalf("runs of u17 = %+v, next %d, %v", byEmail, next, err)
	}
	if other, _, err := s.ListRunsPage(ctx, RunFilter{Partner: "other", Workflow: "welcome", Limit: 5}); err != nil || len(other) != 0 {
		t.Fatalf("another partner's page = %+v, %v", other, err)
	}
}

// A database at 0050 keeps its runs' lookups after 0051 drops the list
// index and makes the contact index lead with the workflow (and 0060
// replaces it with the contacts' keys): an exit finds
// the waiting run, reentry sees it, the listing and a key's cancellation
// find their runs.
func TestOneListIndexMigrationKeepsTheRunsLookups(t *testing.T) {
	skipOnPostgres(t, "a SQLite database at an older version")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 50)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	execOld(t, old,
		`INSERT INTO events (id, partner, event_id, name, email, source, occurred_at, received_at) VALUES
			(1, 'acme', 'e1', 'cart', 'ann@example.com', 'api', 0, 0), (2, 'acme', 'e2', 'cart', 'bob@example.com', 'api', 0, 0)`,
		`INSERT INTO workflow_runs (id, partner, workflow, contact, key, status, step, due_at, event_id, created_at, updated_at) VALUES
			(1, 'acme', 'cart', 'email:ann@example.com', 'k1', 'waiting', 1, 1, 1, 0, 0),
			(2, 'acme', 'cart', 'email:bob@example.com', 'k2', 'waiting', 1, 1, 2, 0, 0)`,
		`INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES ('acme', 'cart', 'waiting', 2)`)
	s := migrate()
	var cols string
	// Since 0060 the lookups go through the contacts' keys (keyhash.go).
	if err := s.reader.QueryRow(`SELECT group_concat(run, ',') FROM run_keys`).Scan(&cols); err != nil || (cols != "1,2" && cols != "2,1") {
		t.Errorf("run_keys holds runs %q (%v)", cols, err)
	}
	var n int
	if err := s.reader.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'workflow_runs_list'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("workflow_runs_list is still there (%d, %v)", n, err)
	}
	res, err := s.AcceptEvents(ctx, []EventWrite{
		{Event: Event{Partner: "acme", Name: "cart", Email: "ann@example.com", Key: "k9", Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: t0}}},
		{Event: Event{Partner: "acme", Name: "order", Email: "ann@example.com", Key: "k1", Source: EventFromAPI}, Exits: []string{"cart"}},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Started) != 0 || res[1].Cancelled != 1 {
		t.Fatalf("results %+v: the waiting run of 0050 was not seen", res)
	}
	if n, err := s.CancelRunsByKey(ctx, "acme", "cart", "k2", t0); err != nil || n != 1 {
		t.Fatalf("cancelled by key %d, %v", n, err)
	}
	if runs, err := s.ListRuns(ctx, RunFilter{Partner: "acme", Workflow: "cart", Status: RunCancelled, Limit: 10}); err != nil || len(runs) != 2 {
		t.Fatalf("cancelled runs %+v, %v", runs, err)
	}
}
