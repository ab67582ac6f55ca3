package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// AdvanceRuns counts the runs it ends as done itself (the status trigger
// leaves them out, migration 0039): after a batch of two workflows' runs
// that end done, suppressed, failed or wait on, every count equals a count
// of the runs, and a batch that fails (a run moved meanwhile) counts
// nothing.
func TestAdvanceRunsKeepsTheRunCounts(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i := range 12 {
		ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", i), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "w1", Step: 1, DueAt: now}, {Workflow: "w2", Step: 1, DueAt: now}}})
	}
	if _, err := s.AcceptEvents(ctx, ws, now); err != nil {
		t.Fatal(err)
	}
	runs, err := s.DueRuns(ctx, now, 100)
	if err != nil || len(runs) != 24 {
		t.Fatalf("%d due runs, %v", len(runs), err)
	}
	advance := func(r Run, k int) RunAdvance {
		a := RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: r.Step, To: r.Step + 1, Status: RunDone,
			Steps: []RunStep{{Step: r.Step, Outcome: StepQueued}}}
		a.Msg = &Message{Channel: "email", Recipient: r.Email, Body: "hello"}
		switch k % 4 {
		case 1:
			a.To, a.Status, a.Msg, a.Steps = r.Step, RunSuppressed, nil, []RunStep{{Step: r.Step, Outcome: StepSuppressed}}
		case 2:
			a.To, a.Status, a.LastError, a.Msg, a.Steps = r.Step, RunFailed, "no template", nil, []RunStep{{Step: r.Step, Outcome: StepFailed}}
		case 3:
			a.Status, a.DueAt, a.Msg, a.Steps = RunWaiting, now.Add(time.Hour), nil, []RunStep{{Step: r.Step, Outcome: StepWaiting}}
		}
		return a
	}
	// A batch with a run that is no longer where it was read stores
	// nothing, counts included.
	moved := []RunAdvance{advance(runs[0], 0), advance(runs[1], 0)}
	moved[1].From++
	if _, err := s.AdvanceRuns(ctx, moved, now); err == nil {
		t.Fatal("a batch with a moved run was stored")
	}
	var advs []RunAdvance
	for k, r := range runs {
		advs = append(advs, advance(r, k/2)) // both workflows each way
	}
	if _, err := s.AdvanceRuns(ctx, advs, now); err != nil {
		t.Fatal(err)
	}
	counts, err := s.RunCounts(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT workflow, status, COUNT(*) FROM workflow_runs GROUP BY workflow, status`)
	if err != nil {
		t.Fatal(err)
	}
	recount := map[string]map[string]int{}
	for rows.Next() {
		var w, st string
		var n int
		if err := rows.Scan(&w, &st, &n); err != nil {
			t.Fatal(err)
		}
		if recount[w] == nil {
			recount[w] = map[string]int{}
		}
		recount[w][st] = n
	}
	rows.Close()
	if recount["w1"][RunDone] == 0 || recount["w2"][RunDone] == 0 || recount["w1"][RunWaiting] == 0 {
		t.Fatalf("the batch did not move runs every way: %v", recount)
	}
	for _, w := range []string{"w1", "w2"} {
		got := counts["acme"][w]
		if len(got) != len(recount[w]) {
			t.Fatalf("%s counts %v, recount %v", w, got, recount[w])
		}
		for st, n := range recount[w] {
			if got[st] != n {
				t.Fatalf("%s counts %v, recount %v", w, got, recount[w])
			}
		}
	}
}
