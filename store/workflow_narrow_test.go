package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// Runs started before migration 0046 carried copies of their event's
// addresses and data; after it they read them from the event, and the
// scheduler, the run routes and the delete trigger still find them.
func TestNarrowRunsMigrationKeepsRunsWithTheirEventsAddressesAndData(t *testing.T) {
	skipOnPostgres(t, "SQLite's table rebuild; PostgreSQL drops the columns in place")
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dropgate.db")
	old := openAtVersion(t, path, 45)
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
	old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
