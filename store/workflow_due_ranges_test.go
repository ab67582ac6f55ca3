package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// dueOrder pages through every run due by at, limit runs a read, as the
// scheduler does, and returns their ids.
func dueOrder(t *testing.T, s *Store, at time.Time, limit int) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	runs, err := s.DueRuns(ctx, at, limit)
	for err == nil && len(runs) > 0 {
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		runs, err = s.DueRunsAfter(ctx, at, runs[len(runs)-1], limit)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// wantDueOrder is the runs waiting and due by at, from the runs list, in
// due order (due time, then id).
func wantDueOrder(t *testing.T, s *Store, workflow string, at time.Time) []int64 {
	t.Helper()
	runs, err := s.ListRuns(context.Background(), RunFilter{Partner: "acme", Workflow: workflow, Status: RunWaiting, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	runs = slices.DeleteFunc(runs, func(r Run) bool { return r.DueAt.After(at) })
	slices.SortFunc(runs, func(a, b Run) int { return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID)) })
	var ids []int64
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}

// Runs started in batches with mixed due times, cancelled, exited and set
// to wait again (earlier, later, and until the very time they were due,
// beside the range they started in) are read in due order, each once,
// page after page, and only while they wait; NextRunDue follows, and once
// everything has fired the due ranges are pruned away.
func TestDueRangesKeepDueOrderPagingAndCancellation(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	contacts := 0
	start := func(dues ...time.Duration) []int64 {
		t.Helper()
		var ws []EventWrite
		for i, d := range dues {
			contacts++
			ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", contacts),
				Key: fmt.Sprintf("k%d", i%4), Source: EventFromAPI},
				Starts: []RunStart{{Workflow: "w", Step: 0, DueAt: t0.Add(d)}}})
		}
		res, err := s.AcceptEvents(ctx, ws, t0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range res {
			ids = append(ids, r.Started...)
		}
		return ids
	}
	h := time.Hour
	a := start(2*h, 2*h, 2*h, 2*h, 2*h, 2*h, 2*h, 2*h, 2*h, 2*h)
	b := start(h, h, h, h, h, h, h, h, h, h)
	c := start(h, 3*h, h, 3*h, 3*h, 3*h, h, h, 2*h, 2*h)
	if next, ok, err := s.NextRunDue(ctx); err != nil || !ok || !next.Equal(t0.Add(h)) {
		t.Fatalf("next due %v %v %v", next, ok, err)
	}
	// A run cancelled by hand and the runs of a key cancelled are skipped.
	if _, _, err := s.CancelRun(ctx, "acme", "w", b[3], t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelRunsByKey(ctx, "acme", "w", "k2", t0); err != nil {
		t.Fatal(err)
	}
	// Runs set to wait again: a[0], a[1], a[3] an hour earlier, a[5] until the time
	// it was due (a range of its own inside a's), c[1] later.
	wait := func(ids []int64, due time.Time) {
		t.Helper()
		var advs []RunAdvance
		for _, id := range ids {
			advs = append(advs, RunAdvance{ID: id, Partner: "acme", Workflow: "w", From: 0, To: 1, Status: RunWaiting, DueAt: due,
				Steps: []RunStep{{Step: 0, Outcome: StepWaiting}}})
		}
		if _, err := s.AdvanceRuns(ctx, advs, t0); err != nil {
			t.Fatal(err)
		}
	}
	wait([]int64{a[0], a[1], a[3]}, t0.Add(h))
	wait([]int64{a[5]}, t0.Add(2*h))
	wait([]int64{c[1]}, t0.Add(4*h))

	for _, at := range []time.Time{t0.Add(h), t0.Add(2 * h), t0.Add(5 * h)} {
		want := wantDueOrder(t, s, "w", at)
		for _, limit := range []int{1, 3, 7, 100} {
			if got := dueOrder(t, s, at, limit); !slices.Equal(got, want) {
				t.Errorf("due by %v, %d a read: %v, want %v", at.Sub(t0), limit, got, want)
			}
		}
	}

	// Everything due by 2h fires; the rest waits.
	fired := dueOrder(t, s, t0.Add(2*h), 1000)
	var advs []RunAdvance
	for _, id := range fired {
		r, err := s.RunOf(ctx, "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, RunAdvance{ID: id, Partner: "acme", Workflow: "w", From: r.Step, To: r.Step + 1, Status: RunDone})
	}
	if _, err := s.AdvanceRuns(ctx, advs, t0.Add(2*h)); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneDueRanges(ctx, t0.Add(2*h)); err != nil {
		t.Fatal(err)
	}
	if got := dueOrder(t, s, t0.Add(2*h), 1000); len(got) != 0 {
		t.Errorf("due by 2h after firing: %v", got)
	}
	if next, ok, err := s.NextRunDue(ctx); err != nil || !ok || !next.Equal(t0.Add(3*h)) {
		t.Errorf("next due after firing %v %v %v, want 3h", next, ok, err)
	}
	// The runs due at 3h are cancelled: the next is c[1]'s 4h, read past
	// the ranges that hold no waiting run.
	for _, id := range []int64{c[3], c[4], c[5]} {
		if _, _, err := s.CancelRun(ctx, "acme", "w", id, t0); err != nil {
			t.Fatal(err)
		}
	}
	want := wantDueOrder(t, s, "w", t0.Add(5*h))
	if len(want) != 1 || want[0] != c[1] {
		t.Fatalf("waiting after the cancellations: %v, want c[1] = %d", want, c[1])
	}
	if next, ok, err := s.NextRunDue(ctx); err != nil || !ok || !next.Equal(t0.Add(4*h)) {
		t.Errorf("next due past cancelled ranges %v %v %v, want 4h", next, ok, err)
	}
	if got := dueOrder(t, s, t0.Add(5*h), 2); !slices.Equal(got, want) {
		t.Errorf("due by 5h: %v, want %v", got, want)
	}
	if err := s.PruneDueRanges(ctx, t0.Add(2*h)); err != nil {
		t.Fatal(err)
	}
	if !s.pg {
		// Only c[1]'s range is left: those before it hold no waiting run.
		var n int
		if err := s.reader.QueryRow(`SELECT count(*) FROM workflow_due_ranges`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d due ranges left (%v), want 1", n, err)
		}
	}
	if next, ok, err := s.NextRunDue(ctx); err != nil || !ok || !next.Equal(t0.Add(4*h)) {
		t.Errorf("next due after pruning %v %v %v, want 4h", next, ok, err)
	}
}

// A run set to wait until the very time it was due, while its batch is
// read page by page, is read again after the batch, not twice in it.
func TestDueRangesReadARunOnceWhenItWaitsAgainUntilTheSameTime(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i := range 6 {
		ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", i), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "w", Step: 0, DueAt: t0}}})
	}
	if _, err := s.AcceptEvents(ctx, ws, t0); err != nil {
		t.Fatal(err)
	}
	first, err := s.DueRuns(ctx, t0, 3)
	if err != nil || len(first) != 3 {
		t.Fatalf("first page %d, %v", len(first), err)
	}
	// The second run sends and waits for its second send "at once".
	if _, err := s.AdvanceRuns(ctx, []RunAdvance{{ID: first[1].ID, Partner: "acme", Workflow: "w", From: 0, To: 1, Status: RunWaiting, DueAt: t0}}, t0); err != nil {
		t.Fatal(err)
	}
	rest, err := s.DueRunsAfter(ctx, t0, first[2], 10)
	if err != nil || len(rest) != 3 || rest[0].ID != first[2].ID+1 {
		t.Fatalf("next page %+v, %v", rest, err)
	}
	all := dueOrder(t, s, t0, 2)
	if len(all) != 6 || all[0] != first[0].ID || all[1] != first[1].ID || !slices.IsSorted(all) {
		t.Errorf("due runs read again: %v", all)
	}
}

// Runs waiting before migration 0054 get a due range each and are read
// in due order after it; the partial index is gone.
func TestDueRangesMigrationKeepsTheWaitingRuns(t *testing.T) {
	skipOnPostgres(t, "SQLite's migrations; PostgreSQL keeps the index")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 53)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	execOld(t, old, `INSERT INTO events (id, partner, event_id, name, email, source, occurred_at, received_at) VALUES
		(1, 'acme', '', 'signup', 'a@example.com', 'api', 0, 0)`)
	for id, due := range map[int]time.Duration{3: 2 * time.Hour, 4: time.Hour, 5: time.Hour, 6: 0} {
		status := RunWaiting
		if id == 6 {
			status = RunDone
		}
		if _, err := old.Exec(`INSERT INTO workflow_runs (id, partner, workflow, contact, status, step, due_at, event_id, created_at, updated_at)
			VALUES (?, 'acme', 'w', 'email:a@example.com', ?, 0, ?, 1, 0, 0)`, id, status, ms(t0.Add(due))); err != nil {
			t.Fatal(err)
		}
	}
	s := migrate()
	if got := dueOrder(t, s, t0.Add(3*time.Hour), 2); !slices.Equal(got, []int64{4, 5, 3}) {
		t.Errorf("due runs after the migration: %v, want [4 5 3]", got)
	}
	if next, ok, err := s.NextRunDue(ctx); err != nil || !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("next due %v %v %v", next, ok, err)
	}
	var n int
	if err := s.reader.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'workflow_runs_due'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("workflow_runs_due still there (%d, %v)", n, err)
	}
}

// A fired batch drops the due ranges up to its last run that hold no
// waiting run, and keeps one that does: a run started meanwhile with a due
// time already past, behind the scheduler's cursor, is read by the next
// pass.
func TestFiredBatchesDropTheirDueRangesAndKeepAWaitingRunBehindThem(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	accept := func(n int, tag string, due time.Time) {
		t.Helper()
		var ws []EventWrite
		for i := range n {
			ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("%s%d@example.com", tag, i), Source: EventFromAPI},
				Starts: []RunStart{{Workflow: "w", Step: 0, DueAt: due}}})
		}
		if _, err := s.AcceptEvents(ctx, ws, t0); err != nil {
			t.Fatal(err)
		}
	}
	fire := func(runs []Run) {
		t.Helper()
		var advs []RunAdvance
		for _, r := range runs {
			advs = append(advs, RunAdvance{ID: r.ID, Partner: "acme", Workflow: "w", From: 0, To: 1, Status: RunDone, Due: r.DueAt})
		}
		if _, err := s.AdvanceRuns(ctx, advs, t0); err != nil {
			t.Fatal(err)
		}
	}
	accept(4, "a", t0.Add(-time.Minute))
	accept(6, "b", t0)
	first, err := s.DueRuns(ctx, t0, 5)
	if err != nil || len(first) != 5 {
		t.Fatalf("first batch %d, %v", len(first), err)
	}
	fire(first)
	accept(1, "late", t0.Add(-time.Hour)) // behind the cursor
	rest, err := s.DueRunsAfter(ctx, t0, first[4], 5)
	if err != nil || len(rest) != 5 {
		t.Fatalf("second batch %d, %v", len(rest), err)
	}
	fire(rest)
	if !s.pg {
		// The first range (four runs due a minute ago) and the second
		// (its last runs fired by this very batch) went with the second
		// batch; the late run's stays.
		var n int
		if err := s.reader.QueryRow(`SELECT count(*) FROM workflow_due_ranges`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d due ranges after two batches (%v), want 1", n, err)
		}
	}
	late, err := s.DueRuns(ctx, t0, 5)
	if err != nil || len(late) != 1 || late[0].Email != "late0@example.com" {
		t.Fatalf("the next pass reads %+v, %v; want the late run", late, err)
	}
	fire(late)
	if err := s.PruneDueRanges(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.NextRunDue(ctx); err != nil || ok {
		t.Errorf("a run waits still: %v, %v", ok, err)
	}
}
