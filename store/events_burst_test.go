package store

import (
	"context"
	"testing"
	"time"
)

// A group of a full API batch holds the WAL as a file job does (the
// writer's checkpoint threshold raised, the checkpointer aside) until no
// group came for the burst's idle time; a few events never start a burst.
func TestALargeEventGroupWritesAsABulkJobUntilIdle(t *testing.T) {
	skipOnPostgres(t, "the burst is about SQLite's WAL checkpoints")
	s := openTest(t)
	// The checkpointer ends an idle burst on its own: long enough that it
	// does not while the test runs on a busy machine.
	s.evBurst.mu.Lock()
	s.evBurst.idle = time.Hour
	s.evBurst.mu.Unlock()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	autoCheckpoint := func() int {
		t.Helper()
		var pages int
		if err := s.writer.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		return pages
	}
	run := RunStart{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)}
	if _, err := s.AcceptEvents(ctx, benchSignups(0, eventBurstMin-1, run), now); err != nil {
		t.Fatal(err)
	}
	if s.inBulk() || autoCheckpoint() != autoCheckpointPages {
		t.Fatalf("a group of %d events started a burst (threshold %d pages)", eventBurstMin-1, autoCheckpoint())
	}
	before := time.Now()
	if _, err := s.AcceptEvents(ctx, benchSignups(eventBurstMin, eventBurstMin, run), now); err != nil {
		t.Fatal(err)
	}
	if !s.inBulk() || autoCheckpoint() == autoCheckpointPages {
		t.Fatalf("a group of %d events did not start a burst (threshold %d pages)", eventBurstMin, autoCheckpoint())
	}
	// A small group while it lasts keeps it going.
	if _, err := s.AcceptEvents(ctx, benchSignups(3*eventBurstMin, 5, run), now); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if s.endIdleEventBurst(ctx, before.Add(30*time.Minute)) || !s.inBulk() {
		t.Fatal("the burst ended before it was idle")
	}
	if !s.endIdleEventBurst(ctx, after.Add(time.Hour)) {
		t.Fatal("the idle burst did not end")
	}
	if s.inBulk() || autoCheckpoint() != autoCheckpointPages {
		t.Fatalf("after the burst the WAL is still held (threshold %d pages)", autoCheckpoint())
	}
	if s.endIdleEventBurst(ctx, after.Add(2*time.Hour)) {
		t.Fatal("a burst ended twice")
	}
}
