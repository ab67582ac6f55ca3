package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Two nodes claiming due runs get different runs; a claim holds the runs
// from the other node until it lapses, or until the run moves on (which
// drops it); a node takes its own claims back (a batch that failed).
func TestNodesClaimDisjointDueRuns(t *testing.T) {
	nodes := openAudienceNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i := range 10 {
		ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", i), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "w1", DueAt: now.Add(time.Duration(i) * time.Second)}}})
	}
	if _, err := a.AcceptEvents(ctx, ws, now); err != nil {
		t.Fatal(err)
	}
	at := now.Add(time.Minute)
	until := at.Add(time.Minute)
	ra, err := a.ClaimDueRuns(ctx, "A", at, until, 4)
	if err != nil || len(ra) != 4 {
		t.Fatalf("A claimed %d runs (%v), want 4", len(ra), err)
	}
	for i := 1; i < len(ra); i++ {
		if !ra[i-1].DueAt.Before(ra[i].DueAt) {
			t.Fatalf("A's runs not in due order: %v then %v", ra[i-1].DueAt, ra[i].DueAt)
		}
	}
	rb, err := b.ClaimDueRuns(ctx, "B", at, until, 100)
	if err != nil || len(rb) != 6 {
		t.Fatalf("B claimed %d runs (%v), want the other 6", len(rb), err)
	}
	held := map[int64]bool{}
	for _, r := range ra {
		held[r.ID] = true
	}
	for _, r := range rb {
		if held[r.ID] {
			t.Fatalf("run %d claimed by both nodes", r.ID)
		}
	}
	if n, _ := b.ClaimDueRuns(ctx, "B", at, until, 100); len(n) != 6 {
		t.Fatalf("B took back %d of its own runs, want 6", len(n))
	}
	if end, ok, err := b.NextRunClaimEnd(ctx, "B", at); err != nil || !ok || !end.Equal(until) {
		t.Fatalf("B sees A's claims end at %v, %v, %v; want %v", end, ok, err, until)
	}
	// A moves one run on to a later step due at once: its claim is gone,
	// and B may take it.
	if _, err := a.AdvanceRuns(ctx, []RunAdvance{{ID: ra[0].ID, Partner: "acme", From: ra[0].Step, To: ra[0].Step + 1,
		Status: RunWaiting, DueAt: at}}, at); err != nil {
		t.Fatal(err)
	}
	rb2, err := b.ClaimDueRuns(ctx, "B", at, until, 100)
	if err != nil || len(rb2) != 7 {
		t.Fatalf("B claimed %d runs once A moved one on (%v), want 7", len(rb2), err)
	}
	// A's claims lapse (A stopped): B takes the rest.
	rb3, err := b.ClaimDueRuns(ctx, "B", until, until.Add(time.Minute), 100)
	if err != nil || len(rb3) != 10 {
		t.Fatalf("B claimed %d runs once A's claims lapsed (%v), want 10", len(rb3), err)
	}
}
