package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A node started again after a crash (same name, same data_dir) takes back
// at once what its previous life held: messages in flight, run claims and
// file claims.
func TestTakeBackPreviousLivesReturnsTheCrashedLifesHold(t *testing.T) {
	ctx := context.Background()
	open := sharedStores(t)
	now := time.Now()
	lease := time.Hour // what a restart would otherwise wait for

	first := open()
	firstID, err := first.RegisterNode(ctx, "box", "data-a", now)
	if err != nil {
		t.Fatal(err)
	}
	crashed := queueTest(t, first, "p", PriorityBulk, 3)
	now = time.Now() // the messages are due from their queueing
	if got := claimAll(t, first, crashed.ID, now, lease); len(got) != 3 {
		t.Fatalf("first life claimed %d", len(got))
	}
	if _, _, err := first.ClaimFile(ctx, FileClaim{Partner: "p", Name: "inbox/a.csv", Version: "v1",
		Node: NodeClaimName(firstID), LeaseUntil: now.Add(lease)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := first.writer.ExecContext(ctx, `INSERT INTO workflow_runs (partner, workflow, contact, status, due_at, event_id,
		created_at, updated_at, claimed_by, claimed_until) VALUES ('p', 'w', 'email:a@b.c', 'waiting', ?, 1, ?, ?, ?, ?)`,
		ms(now.Add(-time.Second)), ms(now), ms(now), NodeClaimName(firstID), ms(now.Add(lease))); err != nil {
		t.Fatal(err)
	}

	// The first life is killed (no StopNode); the same node starts again.
	second := open()
	if _, err := second.RegisterNode(ctx, "box", "data-a", now); err != nil {
		t.Fatal(err)
	}
	n, err := second.TakeBackPreviousLives(ctx, now)
	if err != nil || n != 3 {
		t.Fatalf("TakeBackPreviousLives = %d, %v; want the first life's 3 messages", n, err)
	}
	if got := claimAll(t, second, crashed.ID, now, lease); len(got) != 3 {
		t.Errorf("after the take-back the restarted node claimed %d of the first life's messages, want 3", len(got))
	}
	var claimedBy string
	var claimedUntil, fileLease int64
	if err := second.writer.QueryRowContext(ctx, `SELECT claimed_by, claimed_until FROM workflow_runs WHERE partner = 'p'`).
		Scan(&claimedBy, &claimedUntil); err != nil || claimedBy != "" || claimedUntil != 0 {
		t.Errorf("run claim after the take-back = %q until %d (%v), want none", claimedBy, claimedUntil, err)
	}
	if err := second.writer.QueryRowContext(ctx, `SELECT lease_until FROM file_claims WHERE partner = 'p'`).Scan(&fileLease); err != nil || fileLease != 0 {
		t.Errorf("file claim lease after the take-back = %d (%v), want lapsed", fileLease, err)
	}
	if n, err := second.TakeBackPreviousLives(ctx, now); err != nil || n != 0 {
		t.Errorf("second take-back = %d, %v; want nothing", n, err)
	}
}

// A node that stopped cleanly leaves nothing to take back, and a store
// that never registered a node (a sender's own tests) takes back nothing.
func TestTakeBackPreviousLivesAfterACleanStopTakesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dropgate.db")
	first, err := openTestAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	now := time.Now()
	if _, err := first.RegisterNode(ctx, "box", "data-a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := first.StopNode(ctx, now); err != nil {
		t.Fatal(err)
	}
	j := queueTest(t, first, "p", PriorityBulk, 2)
	now = time.Now()
	claimAll(t, first, j.ID, now, time.Hour) // an unregistered claimer's, live
	second, err := openTestAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if n, err := second.TakeBackPreviousLives(ctx, now); err != nil || n != 0 {
		t.Errorf("unregistered take-back = %d, %v", n, err)
	}
	if _, err := second.RegisterNode(ctx, "box", "data-a", now); err != nil {
		t.Fatal(err)
	}
	if n, err := second.TakeBackPreviousLives(ctx, now); err != nil || n != 0 {
		t.Errorf("take-back after a clean stop = %d, %v; want nothing", n, err)
	}
}

// On PostgreSQL a node name live on another data_dir is refused (the two
// would empty each other's uploads and take each other's claims), until
// that node has been silent for NodeStale; then the new node takes nothing
// of the other's. A node registered before instances were recorded is not
// known to be another.
func TestANodeNameLiveOnAnotherDataDirIsRefused(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	open := sharedStores(t)
	a, b := open(), open()
	now := time.Now()
	if _, err := a.RegisterNode(ctx, "box", "data-a", now); err != nil {
		t.Fatal(err)
	}
	j := queueTest(t, a, "p", PriorityBulk, 2)
	now = time.Now()
	claimAll(t, a, j.ID, now, time.Hour)

	_, err := b.RegisterNode(ctx, "box", "data-b", now.Add(time.Second))
	var inUse *NodeNameInUseError
	if !errors.As(err, &inUse) || inUse.Name != "box" {
		t.Fatalf("RegisterNode of a live name from another data_dir = %v, want a NodeNameInUseError", err)
	}
	later := now.Add(NodeStale + time.Second)
	if _, err := b.RegisterNode(ctx, "box", "data-b", later); err != nil {
		t.Fatalf("RegisterNode once the namesake is silent: %v", err)
	}
	if n, err := b.TakeBackPreviousLives(ctx, later); err != nil || n != 0 {
		t.Errorf("take-back of a namesake's messages = %d, %v; want none", n, err)
	}

	if _, err := a.writer.ExecContext(ctx, `INSERT INTO nodes (hostname, started_at, heartbeat_at) VALUES ('old', ?, ?)`, ms(later), ms(later)); err != nil {
		t.Fatal(err)
	}
	if _, err := open().RegisterNode(ctx, "old", "data-c", later); err != nil {
		t.Errorf("a name last used by a node without an instance: %v", err)
	}
}

// sharedStores returns an opener of stores on one database, each closed
// when the test ends: the lives and nodes of these tests.
func sharedStores(t *testing.T) func() *Store {
	path := filepath.Join(t.TempDir(), "dropgate.db")
	return func() *Store {
		s, err := openTestAt(t, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}
