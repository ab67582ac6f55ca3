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
// triggers, migration 0022) of both workflows, in opposite orders here.
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
		for !done {
			select {
			case <-started:
				done = true // one last pass after the starts end
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
				advs = append(advs, RunAdvance{ID: r.ID, Partner: r.Partner, From: r.Step, To: r.Step + 1, Status: RunDone})
			}
			if len(advs) == 0 {
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
