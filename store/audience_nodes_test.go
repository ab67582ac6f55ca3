package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openAudienceNodes opens n stores on one database, as n dropgate nodes sharing
// one PostgreSQL. Several nodes share only PostgreSQL: on SQLite the
// daemon is the database's only writer.
func openAudienceNodes(t *testing.T, n int) []*Store {
	t.Helper()
	if !onPostgres {
		t.Skip("several nodes share a PostgreSQL database, not a SQLite file")
	}
	path := filepath.Join(t.TempDir(), "dropgate.db")
	var nodes []*Store
	for range n {
		s, err := openTestAt(t, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes = append(nodes, s)
	}
	return nodes
}

// A suppression stored or removed through one node holds at once for the
// sender of another, whatever that node read before.
func TestNodesSeeEachOthersSuppressions(t *testing.T) {
	nodes := openAudienceNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	check := func(want bool) {
		t.Helper()
		if got, err := b.IsSuppressed(ctx, "acme", "email", "ana@example.com"); err != nil || got != want {
			t.Fatalf("node b: IsSuppressed = %v, %v; want %v", got, err, want)
		}
	}
	check(false)
	if _, err := a.AddSuppressions(ctx, []Suppression{{Partner: "acme", Recipient: "ana@example.com", Source: "api"}}); err != nil {
		t.Fatal(err)
	}
	check(true)
	if _, err := a.DeleteSuppressionsOf(ctx, "acme", "ana@example.com", ""); err != nil {
		t.Fatal(err)
	}
	check(false)
	if _, err := a.UnsubscribeEverywhere(ctx, "acme", "ana@example.com", "one-click", "api"); err != nil {
		t.Fatal(err)
	}
	check(true)
}

// Nodes accepting events at once: each partner's event id is stored once
// (the other node's copy is a repeat, not an error), every event and run
// has its own id, and a contact's events sent to two nodes start one run
// (the second sees the first's waiting run).
func TestNodesAcceptEventsAtOnce(t *testing.T) {
	nodes := openAudienceNodes(t, 3)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	const contacts, batches = 60, 8
	batch := func(node, k int) []EventWrite {
		var ws []EventWrite
		for c := range contacts {
			// Every node sends each contact's shared event (one id) and an
			// event of its own (another id); both would start the run.
			for _, id := range []string{fmt.Sprintf("b%d-c%d", k, c), fmt.Sprintf("n%d-b%d-c%d", node, k, c)} {
				ws = append(ws, EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "signup",
					Email: fmt.Sprintf("u%d-%d@example.com", k, c), Source: EventFromAPI},
					Starts: []RunStart{{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)}}})
			}
		}
		return ws
	}
	var mu sync.Mutex
	stored, runs := map[int64]bool{}, map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*batches)
	for n, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range batches {
				res, err := s.AcceptEvents(ctx, batch(n, k), now)
				if err != nil {
					errs <- fmt.Errorf("node %d batch %d: %w", n, k, err)
					return
				}
				mu.Lock()
				for _, r := range res {
					if r.ID != 0 {
						if stored[r.ID] {
							errs <- fmt.Errorf("event id %d given twice", r.ID)
						}
						stored[r.ID] = true
					}
					for _, id := range r.Started {
						if runs[id] {
							errs <- fmt.Errorf("run id %d given twice", id)
						}
						runs[id] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// One shared id per batch and contact, one own id per node: each once.
	if want := batches * contacts * (1 + len(nodes)); len(stored) != want {
		t.Fatalf("%d events stored, want %d", len(stored), want)
	}
	var n int
	if err := nodes[0].reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil || n != len(stored) {
		t.Fatalf("%d events in the table (%v), %d accepted", n, err, len(stored))
	}
	if len(runs) != batches*contacts {
		t.Fatalf("%d runs started, want one per contact: %d", len(runs), batches*contacts)
	}
	if err := nodes[0].reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_runs`).Scan(&n); err != nil || n != len(runs) {
		t.Fatalf("%d runs in the table (%v), %d started", n, err, len(runs))
	}
}

// Two nodes loading the same partner's contacts into two lists at once
// (both first imports as they begin), plus single contacts put meanwhile:
// every load succeeds, each key is one contact, and no attribute written
// is lost. (Loads into one list wait for each other anyway, on the list's
// row.)
func TestNodesLoadOneList(t *testing.T) {
	nodes := openAudienceNodes(t, 2)
	ctx := context.Background()
	const n = 1500
	rows := func(attr string) []ContactRow {
		var out []ContactRow
		for i := range n {
			out = append(out, ContactRow{Line: i + 2, Email: fmt.Sprintf("c%d@example.com", i),
				Attrs: []byte(fmt.Sprintf(`{%q:%d}`, attr, i))})
		}
		return out
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for k, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.BeginListLoad(ctx, "acme", fmt.Sprintf("news%d", k), ListLoadOptions{Fields: map[string]string{fmt.Sprintf("a%d", k): FieldInteger}}, false)
			if err != nil {
				errs <- err
				return
			}
			for _, r := range rows(fmt.Sprintf("a%d", k)) {
				if err := l.Add(r); err != nil {
					errs <- err
					l.Abort()
					return
				}
			}
			if _, err := l.Commit(0, n); err != nil {
				errs <- fmt.Errorf("node %d: %w", k, err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		list, err := nodes[1].EnsureList(ctx, "acme", "vip")
		if err != nil {
			errs <- err
			return
		}
		for i := 0; i < n; i += 100 {
			if _, _, err := nodes[1].PutContact(ctx, list, ContactInput{Email: fmt.Sprintf("c%d@example.com", i),
				Attributes: map[string]any{"vip": true}}); err != nil {
				errs <- fmt.Errorf("put: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var count int
	if err := nodes[0].reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM contacts WHERE partner = 'acme'`).Scan(&count); err != nil || count != n {
		t.Fatalf("%d contacts (%v), want %d", count, err, n)
	}
	for i := 0; i < n; i += 100 {
		c, err := nodes[0].FindContact(ctx, "acme", fmt.Sprintf("c%d@example.com", i), "", "")
		if want := fmt.Sprintf(`{"a0":%d,"a1":%d,"vip":true}`, i, i); err != nil || string(c.Attributes) != want {
			t.Fatalf("contact %d: %s (%v), want %s", i, c.Attributes, err, want)
		}
	}
	for k := range nodes {
		li, err := nodes[0].ListInfoByName(ctx, "acme", fmt.Sprintf("news%d", k))
		if err != nil || li.Subscribed != n {
			t.Fatalf("news%d: %+v %v", k, li, err)
		}
	}
}
