package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Runs started before migration 0046 carried copies of their event's
// addresses and data; after it they read them from the event, and the
// scheduler, the run routes and the delete trigger still find them.
func TestNarrowRunsMigrationKeepsRunsWithTheirEventsAddressesAndData(t *testing.T) {
	skipOnPostgres(t, "SQLite's table rebuild; PostgreSQL drops the columns in place")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 45)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO events (id, partner, event_id, name, email, phone, ref, key, data, source, occurred_at, received_at) VALUES
		(7, 'acme', 'e7', 'signup', 'ann@example.com', '+33612345678', 'c-1', 'k1', '{"plan":"gold"}', 'api', ?, ?),
		(8, 'acme', '', 'signup', '', '+33699999999', '', '', '{}', 'api', ?, ?)`, ms(t0), ms(t0), ms(t0), ms(t0))
	exec(`INSERT INTO workflow_runs (id, partner, workflow, contact, email, phone, ref, key, data, status, step, due_at, event_id,
		created_at, updated_at) VALUES
		(3, 'acme', 'welcome', 'email:ann@example.com', 'ann@example.com', '+33612345678', 'c-1', 'k1', '{"plan":"gold"}',
			'waiting', 1, ?, 7, ?, ?),
		(4, 'acme', 'welcome', 'phone:+33699999999', '', '+33699999999', '', '', '{}', 'done', 2, 0, 8, ?, ?)`,
		ms(t0.Add(time.Hour)), ms(t0), ms(t0), ms(t0), ms(t0))
	exec(`INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES ('acme', 'welcome', 'waiting', 1), ('acme', 'welcome', 'done', 1)`)
	s := migrate()
	var n int
	if err := s.reader.QueryRow(`SELECT count(*) FROM pragma_table_info('workflow_runs') WHERE name IN ('email', 'phone', 'ref', 'data')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("workflow_runs still has %d of email, phone, ref, data (%v)", n, err)
	}
	r, err := s.RunOf(ctx, "acme", 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Email != "ann@example.com" || r.Phone != "+33612345678" || r.Ref != "c-1" || r.Key != "k1" || r.Data["plan"] != "gold" ||
		r.Status != RunWaiting || r.Step != 1 || r.EventID != 7 || !r.DueAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("run 3 after the migration = %+v", r)
	}
	due, err := s.DueRuns(ctx, t0.Add(2*time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].ID != 3 || due[0].Email != "ann@example.com" || due[0].Data["plan"] != "gold" || due[0].Key != "k1" {
		t.Fatalf("due runs = %+v, %v", due, err)
	}
	list, err := s.ListRuns(ctx, RunFilter{Partner: "acme", Workflow: "welcome", Email: "ann@example.com", Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != 3 || list[0].Phone != "+33612345678" {
		t.Errorf("runs of ann@example.com = %+v, %v", list, err)
	}
	if list, err := s.ListRuns(ctx, RunFilter{Partner: "acme", Workflow: "welcome", Limit: 10}); err != nil || len(list) != 2 ||
		list[1].Phone != "+33699999999" || list[1].Email != "" {
		t.Errorf("runs of welcome = %+v, %v", list, err)
	}
	// The delete trigger came back with the rebuilt table.
	if _, err := s.writer.Exec(`DELETE FROM workflow_runs WHERE id = 4`); err != nil {
		t.Fatal(err)
	}
	counts, err := s.RunCounts(ctx, "acme")
	if err != nil || counts["acme"]["welcome"][RunDone] != 0 || counts["acme"]["welcome"][RunWaiting] != 1 {
		t.Errorf("run counts after a delete = %v, %v", counts, err)
	}
}

// A batch of runs with consecutive ids moves them by ranges (on SQLite):
// a run inside a range's bounds that is not in the batch is left alone,
// and a run of a range that moved meanwhile fails the batch, as with a
// list of ids.
func TestAdvanceRunsByRangesMovesExactlyTheBatchsRuns(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i := range 40 {
		ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", i), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "w", Step: 0, DueAt: now}}})
	}
	if _, err := s.AcceptEvents(ctx, ws, now); err != nil {
		t.Fatal(err)
	}
	runs, err := s.DueRuns(ctx, now, 100)
	if err != nil || len(runs) != 40 {
		t.Fatalf("%d due runs, %v", len(runs), err)
	}
	done := func(r Run) RunAdvance {
		return RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: 0, To: 1, Status: RunDone,
			Steps: []RunStep{{Step: 0, Outcome: StepWaiting}}}
	}
	// Every run but the 20th, in two ranges; the 20th waits.
	var advs []RunAdvance
	for k, r := range runs {
		if k != 19 {
			advs = append(advs, done(r))
		}
	}
	if rs := runRanges([]int64{5, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}); len(rs) != 2 || rs[0] != [2]int64{3, 5} || rs[1] != [2]int64{9, 21} {
		t.Errorf("ranges = %v", rs)
	}
	if rs := runRanges([]int64{1, 3, 5, 7, 9, 11, 13, 15, 17}); rs != nil {
		t.Errorf("ranges of scattered ids = %v, want none", rs)
	}
	// A run of the batch cancelled meanwhile fails the whole batch.
	if _, _, err := s.CancelRun(ctx, "acme", "w", runs[30].ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceRuns(ctx, advs, now); !errors.Is(err, ErrRunMoved) {
		t.Fatalf("a batch with a cancelled run: %v", err)
	}
	if r, err := s.RunOf(ctx, "acme", runs[0].ID); err != nil || r.Status != RunWaiting {
		t.Fatalf("run of the failed batch: %+v, %v", r, err)
	}
	advs = append(advs[:29], advs[30:]...)
	if _, err := s.AdvanceRuns(ctx, advs, now); err != nil {
		t.Fatal(err)
	}
	for k, r := range runs {
		got, err := s.RunOf(ctx, "acme", r.ID)
		want := RunDone
		switch k {
		case 19:
			want = RunWaiting
		case 30:
			want = RunCancelled
		}
		if err != nil || got.Status != want {
			t.Errorf("run %d (%d of the batch): %q, %v; want %q", r.ID, k, got.Status, err, want)
		}
	}
}
