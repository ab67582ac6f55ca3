package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// waitQueued waits until the gate has urgent and normal waiters.
func waitQueued(t *testing.T, s *Store, urgent, normal int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.gate.mu.Lock()
		u, n := len(s.gate.urgent), len(s.gate.normal)
		s.gate.mu.Unlock()
		if u == urgent && n == normal {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate has %d urgent and %d other waiters; want %d and %d", u, n, urgent, normal)
		}
		time.Sleep(time.Millisecond)
	}
}

// An urgent write waiting for the writer goes before the other writes that
// waited longer; each class goes first come, first served.
func TestWriterGateLetsUrgentWritesGoFirst(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	release, err := s.lockWriter(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 4)
	take := func(name string, urgent bool) {
		r, err := s.lockWriter(ctx, urgent)
		if err != nil {
			order <- err.Error()
			return
		}
		order <- name
		r()
	}
	go take("bulk1", false)
	waitQueued(t, s, 0, 1)
	go take("bulk2", false)
	waitQueued(t, s, 0, 2)
	go take("api1", true)
	waitQueued(t, s, 1, 2)
	go take("api2", true)
	waitQueued(t, s, 2, 2)
	release()
	var got []string
	for range 4 {
		got = append(got, <-order)
	}
	if want := []string{"api1", "api2", "bulk1", "bulk2"}; !slices.Equal(got, want) {
		t.Fatalf("writer taken in order %v; want %v", got, want)
	}
	// Open again: a lone write takes it at once.
	r, err := s.lockWriter(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	r()
}

// A waiter whose context ends leaves the queue, and the gate goes on to
// the next one.
func TestWriterGateWaiterLeavesWithItsContext(t *testing.T) {
	s := openTest(t)
	release, err := s.lockWriter(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := s.lockWriter(ctx, true)
		gaveUp <- err
	}()
	waitQueued(t, s, 1, 0)
	got := make(chan bool, 1)
	go func() {
		r, err := s.lockWriter(context.Background(), false)
		if err == nil {
			r()
		}
		got <- err == nil
	}()
	waitQueued(t, s, 1, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter = %v; want context.Canceled", err)
	}
	waitQueued(t, s, 0, 1)
	release()
	if !<-got {
		t.Fatal("the next waiter did not get the writer")
	}
}

// An API send that arrives while the sender's outcomes wait for the writer
// is stored before them: when its commit runs, the delivered message is
// still "sending".
func TestAPISendIsStoredBeforeWaitingOutcomes(t *testing.T) {
	skipOnPostgres(t, "the gate orders SQLite's writer; the PostgreSQL claim and completion paths (claim_pg.go, delivery_pg.go) do not take it")
	s := openTest(t)
	ctx := context.Background()
	res, err := s.CreateAPIJobs(ctx, []APISend{apiSend("acme", "", "", "+351910000001")})
	if err != nil || res[0].Err != nil {
		t.Fatalf("CreateAPIJobs = %+v, %v", res, err)
	}
	job := res[0].Job
	cs, err := s.ClaimMessages(ctx, job.ID, "sms", time.Now(), time.Minute, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim = %v, %v", cs, err)
	}
	hold, err := s.lockWriter(ctx, false) // a long write in progress
	if err != nil {
		t.Fatal(err)
	}
	outcome := make(chan error, 1)
	go func() {
		outcome <- s.CompleteMessages(ctx, []Outcome{{ID: cs[0].ID, JobID: job.ID, Attempt: cs[0].Attempt, Kind: OutcomeSent, ProviderID: "p1", At: time.Now()}})
	}()
	waitQueued(t, s, 0, 1)
	seen := make(chan string, 1)
	s.SetAPICommitHook(func() error {
		m, err := s.Message(ctx, cs[0].ID)
		if err != nil {
			return err
		}
		seen <- m.Status
		return nil
	})
	api := make(chan error, 1)
	go func() {
		_, err := s.CreateAPIJobs(ctx, []APISend{apiSend("acme", "", "", "+351910000002")})
		api <- err
	}()
	waitQueued(t, s, 1, 1)
	hold()
	if err := <-api; err != nil {
		t.Fatal(err)
	}
	if err := <-outcome; err != nil {
		t.Fatal(err)
	}
	if st := <-seen; st != MsgSending {
		t.Fatalf("at the API send's commit the delivered message was %q; want it still %q (the API send first)", st, MsgSending)
	}
}

// The writer leaves checkpoints to the checkpointer, which copies what is
// committed into the database on its own connection.
func TestCheckpointerCopiesTheWALOffTheWriter(t *testing.T) {
	skipOnPostgres(t, "WAL checkpoints")
	s := openTest(t)
	ctx := context.Background()
	var pages int
	if err := s.writer.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != autoCheckpointPages {
		t.Fatalf("writer's wal_autocheckpoint = %d; want the backstop %d (the checkpointer does the rest)", pages, autoCheckpointPages)
	}
	runs := s.ckpt.runs.Load()
	if _, err := s.CreateAPIJobs(ctx, []APISend{apiSend("acme", "", "", "+351910000001")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.ckpt.runs.Load() == runs || s.ckpt.copied.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after a write in 30 s (runs %d, frames copied %d)", s.ckpt.runs.Load(), s.ckpt.copied.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
