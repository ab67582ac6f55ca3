package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The recent level of the hash keys in memory (keymem.go, migration
// 0061): read again after a start, from a database at 0060, and by two
// stores on one file.

// The recent level is memory: a store opened again (after a crash, say)
// reads the keys of the rows after their ranges' marks again, some
// ranges settled and others not, and finds every repeat, waiting run and
// contact as before.
func TestRecentKeysAreReadAgainAfterARestart(t *testing.T) {
	skipOnPostgres(t, "SQLite's keys")
	most := settleAt(t, 1<<20)
	path := filepath.Join(t.TempDir(), "dropgate.db")
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var first []EventWrite
	for k := range 40 {
		first = append(first, cartEvent("acme", fmt.Sprintf("e%d", k), fmt.Sprintf("u%d@example.com", k), now))
	}
	if _, err := s.AcceptEvents(ctx, first[:30], now); err != nil {
		t.Fatal(err)
	}
	*most = 50 // 60 keys: the next batch settles a few ranges, not all
	if _, err := s.AcceptEvents(ctx, first[30:], now); err != nil {
		t.Fatal(err)
	}
	before := keysOf(t, s, true, "acme")
	if n := strings.Count(fmt.Sprint(before), "recent"); n == 0 || n == 40 {
		t.Fatalf("want some settled and some recent ids: %v", before)
	}
	s.Close()
	*most = 1 << 20
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var again []EventWrite
	for k := range 40 {
		again = append(again, cartEvent("acme", fmt.Sprintf("r%d", k), fmt.Sprintf("u%d@example.com", k), now))
	}
	res, err := s.AcceptEvents(ctx, append(first, append(again,
		EventWrite{Event: Event{Partner: "acme", EventID: "o39", Name: "order", Email: "u39@example.com", Source: EventFromAPI}, Exits: []string{"cart"}})...), now)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 40 {
		if !res[k].Duplicate {
			t.Errorf("e%d was stored again: %+v", k, res[k])
		}
		if len(res[40+k].Started) != 0 {
			t.Errorf("u%d started a second run: %+v", k, res[40+k])
		}
	}
	if res[80].Cancelled != 1 {
		t.Errorf("u39's exit cancelled %d runs", res[80].Cancelled)
	}
	after := keysOf(t, s, true, "acme")
	for id, key := range before {
		if after[id] != key {
			t.Errorf("%s's key after the restart %q, before %q", id, after[id], key)
		}
	}
	if runs, _, err := s.ListRunsPage(ctx, RunFilter{Partner: "acme", Workflow: "cart", Email: "u39@example.com", Limit: 10}); err != nil || len(runs) != 1 {
		t.Errorf("runs of u39: %+v, %v", runs, err)
	}
}

// 0061 settles the keys of 0060's recent tables and marks every range at
// the last rows: a repeat of an id or a contact whose key was recent is
// found after it, and a new event's key is recent.
func TestMigrationSettlesTheRecentKeyTables(t *testing.T) {
	skipOnPostgres(t, "a SQLite database at an older version")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 60)
	execOld(t, old,
		`INSERT INTO events (id, partner, event_id, name, email, source, occurred_at, received_at) VALUES
			(1, 'acme', 'old', 'cart', 'ann@example.com', 'api', 0, 0), (2, 'acme', 'new', 'cart', 'bob@example.com', 'api', 0, 0)`,
		`INSERT INTO workflow_runs (id, partner, workflow, contact, key, status, step, due_at, event_id, created_at, updated_at) VALUES
			(1, 'acme', 'cart', 'email:ann@example.com', '', 'waiting', 1, 1, 1, 0, 0),
			(2, 'acme', 'cart', 'email:bob@example.com', '', 'waiting', 1, 1, 2, 0, 0)`,
		`INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES ('acme', 'cart', 'waiting', 2)`,
		fmt.Sprintf(`INSERT INTO event_keys (hash, event) VALUES (%d, 1)`, eventKeyHash("acme", "old")),
		fmt.Sprintf(`INSERT INTO event_keys_recent (hash, event) VALUES (%d, 2)`, eventKeyHash("acme", "new")),
		fmt.Sprintf(`INSERT INTO run_keys (hash, run) VALUES (%d, 1)`, runKeyOf("acme", "cart", "email:ann@example.com")),
		fmt.Sprintf(`INSERT INTO run_keys_recent (hash, run) VALUES (%d, 2)`, runKeyOf("acme", "cart", "email:bob@example.com")))
	s := migrate()
	if got := keysOf(t, s, true, "acme"); !strings.HasPrefix(got["old"], "settled") || !strings.HasPrefix(got["new"], "settled") {
		t.Fatalf("event keys %v", got)
	}
	if got := keysOf(t, s, false, "acme"); len(got) != 2 || !strings.HasPrefix(got["email:bob@example.com"], "settled") {
		t.Fatalf("run keys %v", got)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "new", "bob@example.com", now), cartEvent("acme", "later", "bob@example.com", now),
		cartEvent("acme", "third", "cy@example.com", now)}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || len(res[1].Started) != 0 || len(res[2].Started) != 1 {
		t.Fatalf("after the migration: %+v", res)
	}
	if got := keysOf(t, s, true, "acme")["third"]; !strings.HasPrefix(got, "recent") {
		t.Errorf("a new id's key %q", got)
	}
}

// Two stores on one SQLite file (two processes) take turns storing events
// while their recent keys settle: each reads the level again after the
// other's commits, settles the other's keys with its own, and every id
// and contact either stored is found by both.
func TestTwoStoresSettlingInTurnFindEveryKey(t *testing.T) {
	skipOnPostgres(t, "two stores on one SQLite file")
	settleAt(t, 3)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	stores := [2]*Store{}
	stores[0], stores[1] = twoStoresOnOneFile(t)
	var sent []EventWrite
	for k := range 30 {
		ev := cartEvent("acme", fmt.Sprintf("e%d", k), fmt.Sprintf("u%d@example.com", k), now)
		sent = append(sent, ev)
		if res, err := stores[k%2].AcceptEvents(ctx, []EventWrite{ev}, now); err != nil || res[0].Duplicate || len(res[0].Started) != 1 {
			t.Fatalf("event %d: %+v, %v", k, res, err)
		}
	}
	for i, s := range stores {
		var again []EventWrite
		for k := range 30 {
			again = append(again, cartEvent("acme", fmt.Sprintf("s%d-%d", i, k), fmt.Sprintf("u%d@example.com", k), now))
		}
		res, err := s.AcceptEvents(ctx, append(slices.Clone(sent), again...), now)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 30 {
			if !res[k].Duplicate {
				t.Errorf("store %d stored e%d again", i, k)
			}
			if len(res[30+k].Started) != 0 {
				t.Errorf("store %d started a second run for u%d", i, k)
			}
		}
	}
	for name, key := range keysOf(t, stores[1], true, "acme") { // the last to write: its level is current
		if strings.HasPrefix(key, "lost") {
			t.Errorf("%s has no key: %s", name, key)
		}
	}
}

// Batches that fail one after the other (a full disk, a client retrying)
// each have the recent level read again, but its keys are not added to
// the filters again: only each batch's own keys are, and the filters do
// not fill and double at every failure.
func TestFailedBatchesDoNotRefillTheFilters(t *testing.T) {
	skipOnPostgres(t, "SQLite's keys")
	settleAt(t, 1<<20)
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var first []EventWrite
	for k := range 20 {
		first = append(first, cartEvent("acme", fmt.Sprintf("e%d", k), fmt.Sprintf("u%d@example.com", k), now))
	}
	if _, err := s.AcceptEvents(ctx, first, now); err != nil {
		t.Fatal(err)
	}
	held := func() int {
		s.runKeys.mu.Lock()
		defer s.runKeys.mu.Unlock()
		n := 0
		for _, f := range []filter{s.runKeys.events, s.runKeys.runs} {
			for _, b := range f {
				n += b.n
			}
		}
		return n
	}
	before := held()
	fail := errors.New("the disk is full")
	s.SetAcceptEventsFault(func([]EventWrite) error { return fail })
	for k := range 5 {
		if _, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", fmt.Sprintf("f%d", k), "new@example.com", now)}, now); !errors.Is(err, fail) {
			t.Fatalf("failing batch %d: %v", k, err)
		}
	}
	s.SetAcceptEventsFault(nil)
	if res, err := s.AcceptEvents(ctx, []EventWrite{cartEvent("acme", "e0", "u0@example.com", now), cartEvent("acme", "g", "new@example.com", now)}, now); err != nil || !res[0].Duplicate || len(res[1].Started) != 1 {
		t.Fatalf("after the failures: %+v, %v", res, err)
	}
	// Six batches noted an event key and a run key each.
	if added := held() - before; added > 12 {
		t.Errorf("the filters took %d keys for 6 batches of one new event and run each", added)
	}
}
