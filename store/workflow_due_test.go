package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// DueRunsAfter reads on from a run in due order, ids breaking ties among
// runs due at the same instant, and leaves runs not yet due.
func TestDueRunsAfterReadsOnInDueOrder(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i, due := range []time.Duration{time.Minute, time.Minute, 0, time.Minute, time.Hour} {
		ws = append(ws, EventWrite{Event: Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%d@example.com", i), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "welcome", Step: 1, DueAt: now.Add(due)}}})
	}
	res, err := s.AcceptEvents(ctx, ws, now)
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(30 * time.Minute)
	first, err := s.DueRuns(ctx, at, 2)
	if err != nil || len(first) != 2 || first[0].ID != res[2].Started[0] || first[1].ID != res[0].Started[0] {
		t.Fatalf("first batch %+v, %v", first, err)
	}
	rest, err := s.DueRunsAfter(ctx, at, first[1], 10)
	if err != nil || len(rest) != 2 || rest[0].ID != res[1].Started[0] || rest[1].ID != res[3].Started[0] {
		t.Fatalf("next batch %+v, %v", rest, err)
	}
	if rest[0].Data != nil || rest[0].Email != "u1@example.com" || rest[0].Step != 1 || !rest[0].DueAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("run read as %+v", rest[0])
	}
}
