package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// collide makes keyHash give hash to the keys whose last part is in
// names (an event id, a contact) and the real hash to the others, until
// the test ends.
func collide(t *testing.T, hash int64, names ...string) {
	t.Helper()
	keyHashOverride = func(parts []string) int64 {
		if slices.Contains(names, parts[len(parts)-1]) {
			return hash
		}
		return fnvKeyHash(parts)
	}
	t.Cleanup(func() { keyHashOverride = nil })
}

// keysOf is the (level, key) of each of a partner's event ids, or of each
// contact's runs of "cart", on SQLite: "settled" for a key in the settled
// table, "recent" for a row after its range's mark whose key the writer's
// recent level holds, "lost" for a row with its key in neither.
func keysOf(t *testing.T, s *Store, events bool, partner string) map[string]string {
	t.Helper()
	kind, keyOf := eventKeyKind, func(name string) int64 { return eventKeyHash(partner, name) }
	q := `SELECT e.id, e.event_id, k.hash IS NOT NULL, COALESCE(k.hash, 0) FROM events e LEFT JOIN event_keys k ON k.event = e.id
		WHERE e.partner = ?1 AND e.event_id <> ''`
	if !events {
		kind, keyOf = runKeyKind, func(name string) int64 { return runKeyOf(partner, "cart", name) }
		q = `SELECT r.id, r.contact, k.hash IS NOT NULL, COALESCE(k.hash, 0) FROM workflow_runs r LEFT JOIN run_keys k ON k.run = r.id
			WHERE r.partner = ?1 AND r.workflow = 'cart'`
	}
	marks := map[int]int64{}
	rows, err := s.reader.Query(`SELECT slice, upto FROM key_marks WHERE kind = ?`, kind)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var slice int
		var upto int64
		if err := rows.Scan(&slice, &upto); err != nil {
			t.Fatal(err)
		}
		marks[slice] = upto
	}
	rows.Close()
	s.runKeys.mu.Lock()
	defer s.runKeys.mu.Unlock()
	level := &s.runKeys.recentEvents
	if !events {
		level = &s.runKeys.recentRuns
	}
	rows, err = s.reader.Query(q, partner)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, key int64
		var name string
		var settled bool
		if err := rows.Scan(&id, &name, &settled, &key); err != nil {
			t.Fatal(err)
		}
		switch {
		case settled:
			out[name] += fmt.Sprintf("settled %d;", key)
		case id > marks[sliceOf(keyOf(name))] && slices.Contains(level.appendIDs(nil, keyOf(name)), id):
			out[name] += fmt.Sprintf("recent %d;", keyOf(name))
		default:
			out[name] += fmt.Sprintf("lost %d;", keyOf(name))
		}
	}
	return out
}

// settleAt makes the recent keys settle from n of them on (recentKeysMax)
// until the test ends; the returned n may be changed meanwhile.
func settleAt(t *testing.T, n int) *int {
	most := n
	old := recentKeysMax
	recentKeysMax = func(int64) int { return most }
	t.Cleanup(func() { recentKeysMax = old })
	return &most
}

func cartEvent(partner, id, email string, now time.Time) EventWrite {
	return EventWrite{Event: Event{Partner: partner, EventID: id, Name: "cart_abandoned", Email: email, Source: EventFromAPI},
		Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}}
}

// Event ids whose keys collide are each stored once, in one batch or
// across batches, and a repeat of any of them (or another partner's same
// id) is told apart by the row read, not by the key.
func TestCollidingEventIDsAreStoredOnceEach(t *testing.T) {
	collide(t, 1000, "a", "b", "c")
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "a", "a@example.com", now), cartEvent("acme", "b", "b@example.com", now)}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[1].Duplicate || len(res[0].Started) != 1 || len(res[1].Started) != 1 {
		t.Fatalf("two colliding ids in one batch: %+v", res)
	}
	res, err = s.AcceptEvents(ctx, []EventWrite{
		cartEvent("acme", "c", "c@example.com", now), cartEvent("acme", "b", "b2@example.com", now),
		cartEvent("acme", "a", "a2@example.com", now), cartEvent("other", "a", "a@example.com", now),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || !res[1].Duplicate || !res[2].Duplicate || res[3].Duplicate || len(res[0].Started) != 1 || len(res[3].Started) != 1 {
		t.Fatalf("a third colliding id, two repeats, another partner's id: %+v", res)
	}
	if onPostgres {
		return // PostgreSQL looks ids up by their text
	}
	if got, want := keysOf(t, s, true, "acme"), map[string]string{"a": "recent 1000;", "b": "recent 1000;", "c": "recent 1000;"}; !maps.Equal(got, want) {
		t.Errorf("acme's keys %v, want %v", got, want)
	}
}

// Contacts whose hashes collide keep their own runs: one's waiting run
// neither holds back another's start nor is cancelled by another's exit,
// and the listing by email shows only that contact's runs.
func TestCollidingContactsKeepTheirOwnRuns(t *testing.T) {
	collide(t, 7, "email:ann@example.com", "email:bob@example.com")
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	exit := func(id, email string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "order_placed", Email: email, Source: EventFromAPI}, Exits: []string{"cart"}}
	}
	res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e1", "ann@example.com", now)}, now)
	if err != nil || len(res[0].Started) != 1 {
		t.Fatalf("ann's start %+v, %v", res, err)
	}
	ann := res[0].Started[0]
	res, err = s.AcceptEvents(ctx, []EventWrite{
		exit("e2", "bob@example.com"), cartEvent("acme", "e3", "bob@example.com", now), cartEvent("acme", "e4", "ann@example.com", now),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Cancelled != 0 || len(res[1].Started) != 1 || len(res[2].Started) != 0 {
		t.Fatalf("bob's exit and start, ann's second start: %+v", res)
	}
	bob := res[1].Started[0]
	res, err = s.AcceptEvents(ctx, []EventWrite{exit("e5", "bob@example.com")}, now)
	if err != nil || res[0].Cancelled != 1 {
		t.Fatalf("bob's exit %+v, %v", res, err)
	}
	if r, err := s.RunOf(ctx, "acme", ann); err != nil || r.Status != RunWaiting {
		t.Fatalf("ann's run %+v, %v", r, err)
	}
	if r, err := s.RunOf(ctx, "acme", bob); err != nil || r.Status != RunCancelled {
		t.Fatalf("bob's run %+v, %v", r, err)
	}
	runs, _, err := s.ListRunsPage(ctx, RunFilter{Partner: "acme", Workflow: "cart", Email: "ann@example.com", Limit: 10})
	if err != nil || len(runs) != 1 || runs[0].ID != ann {
		t.Fatalf("ann's runs %+v, %v", runs, err)
	}
}

// 0060 fills the settled keys from the rows before it, two stored ids
// with one key among them, and every lookup finds them after: repeats, a
// third colliding id, exits and reentry.
func TestHashKeysMigrationFillsTheKeysOfOldRows(t *testing.T) {
	skipOnPostgres(t, "a SQLite database at an older version")
	collide(t, 5000, "x1", "x2", "x3")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 59)
	execOld(t, old,
		`INSERT INTO events (id, partner, event_id, name, email, source, occurred_at, received_at) VALUES
			(1, 'acme', 'x1', 'cart', 'ann@example.com', 'api', 0, 0), (2, 'acme', 'x2', 'cart', 'bob@example.com', 'api', 0, 0),
			(3, 'acme', 'y', 'cart', 'cy@example.com', 'api', 0, 0), (4, 'acme', '', 'cart', 'dee@example.com', 'api', 0, 0)`,
		`INSERT INTO workflow_runs (id, partner, workflow, contact, key, status, step, due_at, event_id, created_at, updated_at) VALUES
			(1, 'acme', 'cart', 'email:ann@example.com', '', 'waiting', 1, 1, 1, 0, 0),
			(2, 'acme', 'cart', 'email:bob@example.com', '', 'done', 2, 0, 2, 0, 0)`,
		`INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES ('acme', 'cart', 'waiting', 1), ('acme', 'cart', 'done', 1)`)
	s := migrate()
	want := map[string]string{"x1": "settled 5000;", "x2": "settled 5000;", "y": fmt.Sprintf("settled %d;", eventKeyHash("acme", "y"))}
	if got := keysOf(t, s, true, "acme"); !maps.Equal(got, want) {
		t.Errorf("event keys %v, want %v", got, want)
	}
	want = map[string]string{"email:ann@example.com": fmt.Sprintf("settled %d;", runKeyOf("acme", "cart", "email:ann@example.com")),
		"email:bob@example.com": fmt.Sprintf("settled %d;", runKeyOf("acme", "cart", "email:bob@example.com"))}
	if got := keysOf(t, s, false, "acme"); !maps.Equal(got, want) {
		t.Errorf("run keys %v, want %v", got, want)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	res, err := s.AcceptEvents(ctx, []EventWrite{
		cartEvent("acme", "x2", "bob@example.com", now), cartEvent("acme", "x1", "ann@example.com", now), cartEvent("acme", "y", "cy@example.com", now),
		cartEvent("acme", "x3", "ann@example.com", now), cartEvent("acme", "x4", "bob@example.com", now),
		{Event: Event{Partner: "acme", EventID: "x5", Name: "order", Email: "ann@example.com", Source: EventFromAPI}, Exits: []string{"cart"}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || !res[1].Duplicate || !res[2].Duplicate {
		t.Fatalf("repeats of old ids were stored: %+v", res)
	}
	// ann's old run waits (x3 starts none, x5 cancels it); bob's is done (x4 starts one).
	if res[3].Duplicate || len(res[3].Started) != 0 || len(res[4].Started) != 1 || res[5].Cancelled != 1 {
		t.Fatalf("results %+v", res)
	}
	if got := keysOf(t, s, true, "acme")["x3"]; got != "recent 5000;" {
		t.Errorf("x3's key %q", got)
	}
}

// Once the recent level holds recentKeysMax keys, batches move them to
// the settled tables a range of keys at a time, and every lookup reads
// both levels: repeats, reentry and exits of runs in either level and of
// one started in the same batch, the listing by email.
func TestRecentKeysSettleAndAreFoundInBothLevels(t *testing.T) {
	skipOnPostgres(t, "SQLite's keys")
	most := settleAt(t, 6)
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	levels := func() (recent, settled int) {
		t.Helper()
		for _, events := range []bool{true, false} {
			for _, key := range keysOf(t, s, events, "acme") {
				recent += strings.Count(key, "recent")
				settled += strings.Count(key, "settled")
			}
		}
		return recent, settled
	}
	// Two batches of two events and two runs: four keys, then eight.
	if res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e1", "ann@example.com", now), cartEvent("acme", "e2", "bob@example.com", now)}, now); err != nil || len(res[1].Started) != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if recent, settled := levels(); recent != 4 || settled != 0 {
		t.Fatalf("after four keys: %d recent, %d settled", recent, settled)
	}
	if res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e3", "cy@example.com", now), cartEvent("acme", "e4", "dee@example.com", now)}, now); err != nil || len(res[1].Started) != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if recent, settled := levels(); recent >= 6 || recent+settled != 8 {
		t.Fatalf("after eight keys: %d recent, %d settled", recent, settled)
	}
	// Settle everything, then add keys to the recent level only.
	*most = 1
	if _, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e9", "fay@example.com", now)}, now); err != nil {
		t.Fatal(err)
	}
	if recent, settled := levels(); recent != 0 || settled != 10 {
		t.Fatalf("settling every range: %d recent, %d settled", recent, settled)
	}
	*most = 1 << 20
	res, err := s.AcceptEvents(ctx, []EventWrite{
		cartEvent("acme", "e1", "ann@example.com", now),  // a repeat of a settled id
		cartEvent("acme", "e5", "ann@example.com", now),  // ann's settled run waits
		cartEvent("acme", "e6", "erin@example.com", now), // a new contact: a recent run
		{Event: Event{Partner: "acme", EventID: "e7", Name: "order", Email: "bob@example.com", Source: EventFromAPI}, Exits: []string{"cart"}},
		{Event: Event{Partner: "acme", EventID: "e8", Name: "order", Email: "erin@example.com", Source: EventFromAPI}, Exits: []string{"cart"}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || len(res[1].Started) != 0 || len(res[2].Started) != 1 || res[3].Cancelled != 1 || res[4].Cancelled != 1 {
		t.Fatalf("results %+v", res)
	}
	if recent, settled := levels(); recent != 5 || settled != 10 {
		t.Fatalf("after the lookups: %d recent, %d settled", recent, settled)
	}
	if res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e6", "erin@example.com", now)}, now); err != nil || !res[0].Duplicate {
		t.Fatalf("a repeat of a recent id: %+v, %v", res, err)
	}
	for _, email := range []string{"ann@example.com", "erin@example.com"} {
		if runs, _, err := s.ListRunsPage(ctx, RunFilter{Partner: "acme", Workflow: "cart", Email: email, Limit: 10}); err != nil || len(runs) != 1 {
			t.Errorf("runs of %s: %+v, %v", email, runs, err)
		}
	}
}

// Each lookup by a key reads the settled keys by their primary key and
// the rows by id (the recent ones' too): a plan that scanned events or
// runs would hold the writer for as long as the tables grow.
func TestKeyLookupsReadRowsByID(t *testing.T) {
	skipOnPostgres(t, "SQLite's plans")
	s := openTestStore(t)
	for _, c := range []struct {
		q    string
		args []any
	}{
		{knownEventsSQLite, []any{"[1,2]", "[3]"}},
		{latestRunsSQL, []any{"acme", "cart", "[1,2]", "[3]"}},
		{runLatestSQLite, []any{1, "[3]", "acme", "email:a", "cart"}},
		{runExitSQLite, []any{1, 1, 1, "[3]", "acme", "email:a", "cart", "", ""}},
		{runsOfEmailSQLite, []any{1, "acme", "cart", "a", "", "", "", "", 0, 10}},
	} {
		plan := queryPlan(t, s.reader, c.q, c.args...)
		keySeeks, rowSeeks := 0, 0
		for _, step := range plan {
			switch {
			case strings.Contains(step, "USING PRIMARY KEY (hash=?)"):
				keySeeks++
			case strings.Contains(step, "USING INTEGER PRIMARY KEY (rowid=?)"):
				rowSeeks++
			case strings.HasPrefix(step, "SCAN") && !strings.Contains(step, "VIRTUAL TABLE") && !strings.Contains(step, "subquery") && !strings.Contains(step, "LIST"):
				t.Errorf("%.60s...: step %q scans a table", c.q, step)
			}
		}
		if keySeeks != 1 || rowSeeks == 0 {
			t.Errorf("%.60s...: plan %q: %d key seeks, %d row seeks", c.q, strings.Join(plan, "; "), keySeeks, rowSeeks)
		}
	}
}

// An event id stored through another connection to the same SQLite file
// (another process) is not in this store's filter of ids; its repeat
// must still be found.
func TestARepeatOfAnIDStoredThroughAnotherConnectionIsFound(t *testing.T) {
	skipOnPostgres(t, "two stores on one SQLite file")
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s1, s2 := twoStoresOnOneFile(t)
	if res, err := s1.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "a1", "ann@example.com", now)}, now); err != nil || res[0].Duplicate {
		t.Fatalf("first store: %+v, %v", res, err)
	}
	if res, err := s2.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "b1", "bob@example.com", now)}, now); err != nil || res[0].Duplicate {
		t.Fatalf("second store: %+v, %v", res, err)
	}
	res, err := s1.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "b1", "bob@example.com", now)}, now)
	if err != nil || !res[0].Duplicate {
		t.Fatalf("a repeat of the other store's id: %+v, %v", res, err)
	}
}

// A batch that settled keys and then rolled back leaves every key where
// it was: its own events can be sent again and are stored, the settled
// ones are still repeats (the recent level it changed is read again).
func TestABatchRolledBackAfterSettlingLosesNoKey(t *testing.T) {
	skipOnPostgres(t, "SQLite's keys")
	settleAt(t, 1)
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if _, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e1", "ann@example.com", now)}, now); err != nil {
		t.Fatal(err)
	}
	fail := errors.New("the disk is gone")
	s.SetAcceptEventsFault(func([]EventWrite) error { return fail })
	if _, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e2", "bob@example.com", now)}, now); !errors.Is(err, fail) {
		t.Fatalf("the failing batch: %v", err)
	}
	s.SetAcceptEventsFault(nil)
	res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e2", "bob@example.com", now), cartEvent("acme", "e1", "ann@example.com", now)}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || len(res[0].Started) != 1 || !res[1].Duplicate {
		t.Fatalf("after the rollback: %+v", res)
	}
	if got := keysOf(t, s, true, "acme"); len(got) != 2 || !strings.HasPrefix(got["e1"], "settled") || !strings.HasPrefix(got["e2"], "settled") {
		t.Fatalf("event keys %v", got)
	}
}
