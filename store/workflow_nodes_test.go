package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// Runs of two workflows started on one node while another node's
// scheduler moves them on: both take the run counts' rows (kept by
// triggers, migration 0022, and by AdvanceRuns for done runs, 0039) of
// both workflows.
// PostgreSQL breaks such a deadlock by failing one transaction; neither
// call may fail for it, and every run started is moved exactly once.
func TestNodesStartAndAdvanceRunsAtOnce(t *testing.T) {
	nodes := openAudienceNodes(t, 2)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	const batches, perBatch = 30, 40
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	started := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(started)
		for k := range batches {
			var ws []EventWrite
			for c := range perBatch {
				ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d-%d@example.com", k, c), Source: EventFromAPI},
					Starts: []RunStart{{Workflow: "w1", DueAt: now}, {Workflow: "w2", DueAt: now}}})
			}
			if _, err := nodes[0].AcceptEvents(ctx, ws, now); err != nil {
				errs <- fmt.Errorf("accept batch %d: %w", k, err)
				return
			}
		}
	}()
	moved := 0
	go func() {
		defer wg.Done()
		done := false
		for {
			select {
			case <-started:
				done = true // then passes until nothing is due
			default:
			}
			runs, err := nodes[1].DueRuns(ctx, now, 200)
			if err != nil {
				errs <- err
				return
			}
			// w2's runs first: the starts take w1's counts first.
			sort.SliceStable(runs, func(i, j int) bool { return runs[i].Workflow > runs[j].Workflow })
			var advs []RunAdvance
			for _, r := range runs {
				advs = append(advs, RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: r.Step, To: r.Step + 1, Status: RunDone})
			}
			if len(advs) == 0 {
				if done {
					return
				}
				continue
			}
			if _, err := nodes[1].AdvanceRuns(ctx, advs, now); err != nil {
				errs <- fmt.Errorf("advance: %w", err)
				return
			}
			moved += len(advs)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if want := batches * perBatch * 2; moved != want {
		t.Fatalf("%d runs moved, want %d", moved, want)
	}
	counts, err := nodes[0].RunCounts(ctx, "acme")
	if err != nil || counts["acme"]["w1"][RunDone] != batches*perBatch || counts["acme"]["w2"][RunDone] != batches*perBatch {
		t.Fatalf("counts %v %v", counts, err)
	}
}

// A batch of events that loses a deadlock on the run counts to another
// node's transaction runs again and succeeds. The other node's
// transaction is played by hand: it holds w2's count, waits until the
// batch (which takes w1's first) waits for it, then asks for w1's.
func TestNodesAcceptEventsRetriesALostDeadlock(t *testing.T) {
	nodes := openAudienceNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	start := func(email string) []EventWrite {
		return []EventWrite{{Event: Event{Partner: "acme", Name: "signup", Email: email, Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "w1", DueAt: now}, {Workflow: "w2", DueAt: now}}}}
	}
	if _, err := a.AcceptEvents(ctx, start("first@example.com"), now); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := a.writer.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	other, err := b.writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	hold := `UPDATE workflow_run_counts SET n = n WHERE partner = 'acme' AND workflow = ? AND status = 'waiting'`
	if _, err := other.ExecContext(ctx, hold, "w2"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.AcceptEvents(ctx, start("second@example.com"), now)
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); ; {
		var wait string
		if err := b.reader.QueryRowContext(ctx, `SELECT COALESCE(wait_event_type, '') FROM pg_stat_activity WHERE pid = ?`, pid).Scan(&wait); err != nil {
			t.Fatal(err)
		}
		if wait == "Lock" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited for the other transaction")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Either transaction may be failed to break the deadlock; if it is the
	// batch, it must run again once this one ends.
	other.ExecContext(ctx, hold, "w1")
	other.Rollback()
	if err := <-done; err != nil {
		t.Fatalf("the batch failed: %v", err)
	}
	counts, err := a.RunCounts(ctx, "acme")
	if err != nil || counts["acme"]["w1"][RunWaiting] != 2 || counts["acme"]["w2"][RunWaiting] != 2 {
		t.Fatalf("counts %v %v", counts, err)
	}
}
