package store

import (
	"context"
	"testing"
	"time"
)

// One batch acts in order, as events sent one by one would: a start, an
// exit of the same key cancelling it, a start again; a second start while
// one waits; a repeated id within the batch and against the stored ones.
func TestAcceptEventsActsInOrderWithinABatch(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	start := func(id, key string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "cart_abandoned", Email: "ana@example.com", Key: key, Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}}
	}
	exit := func(id, key string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "order_placed", Email: "ana@example.com", Key: key, Source: EventFromAPI},
			Exits: []string{"cart"}}
	}
	res, err := s.AcceptEvents(ctx, []EventWrite{start("e1", "c1"), exit("e2", "c1"), start("e3", "c2"), start("e4", "c3"), start("e1", "c9")}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Started) != 1 || res[1].Cancelled != 1 || len(res[2].Started) != 1 || len(res[3].Started) != 0 || !res[4].Duplicate {
		t.Fatalf("results %+v", res)
	}
	first, err := s.RunOf(ctx, "acme", res[0].Started[0])
	if err != nil || first.Status != RunCancelled || first.ExitEvent != res[1].ID {
		t.Fatalf("first run %+v, %v", first, err)
	}
	second, err := s.RunOf(ctx, "acme", res[2].Started[0])
	if err != nil || second.Status != RunWaiting || second.Key != "c2" || !second.DueAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("second run %+v, %v", second, err)
	}
	// The next batch sees the stored runs: an exit of c2 cancels the
	// waiting run, a repeat of e3 does nothing.
	res, err = s.AcceptEvents(ctx, []EventWrite{start("e3", "c2"), exit("e5", "c2"), start("e6", "c4")}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[1].Cancelled != 1 || len(res[2].Started) != 1 {
		t.Fatalf("results %+v", res)
	}
	// Reentry: a contact whose last run started within the window starts
	// none; "never" starts none once one ran.
	later := start("e7", "c5")
	later.Starts[0].Reentry = 2 * time.Hour
	never := start("e8", "c6")
	never.Starts[0].Reentry = -1
	s.CancelRunsByKey(ctx, "acme", "cart", "c4", now)
	res, err = s.AcceptEvents(ctx, []EventWrite{later, never}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Started) != 0 || len(res[1].Started) != 0 {
		t.Fatalf("reentry ignored: %+v", res)
	}
	res, err = s.AcceptEvents(ctx, []EventWrite{start("e9", "c7")}, now.Add(3*time.Hour))
	if err != nil || len(res[0].Started) != 1 {
		t.Fatalf("after the reentry window: %+v, %v", res, err)
	}
}
