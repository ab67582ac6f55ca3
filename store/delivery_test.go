package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// queueTest creates a job of n messages on channel "sms".
func queueTest(t *testing.T, s *Store, partner string, priority, n int) Job {
	t.Helper()
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Channel: "sms", Recipient: fmt.Sprintf("+1%d", i), Body: "hi"}
	}
	j, _, err := s.CreateJob(context.Background(), Job{Partner: partner, Source: SourceAPI, Priority: priority}, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func claimAll(t *testing.T, s *Store, jobID int64, now time.Time, lease time.Duration) []Claim {
	t.Helper()
	cs, err := s.ClaimMessages(context.Background(), jobID, "sms", now, lease, 100)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// complete records outcomes and checks their jobs for the end, as the
// sender does once a job has nothing left in flight.
func complete(t *testing.T, s *Store, outs ...Outcome) {
	t.Helper()
	if err := s.CompleteMessages(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if _, err := s.FinishJob(context.Background(), o.JobID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClaimLeasesDueMessagesAndStartsTheJob(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 3)
	now := time.Now()
	runnable, err := s.RunnableJobs(ctx, "sms", now)
	if err != nil || len(runnable) != 1 || runnable[0].ID != j.ID {
		t.Fatalf("runnable = %+v, %v", runnable, err)
	}
	if r, _ := s.RunnableJobs(ctx, "email", now); len(r) != 0 {
		t.Fatalf("runnable on another channel = %+v", r)
	}
	cs := claimAll(t, s, j.ID, now, time.Minute)
	if len(cs) != 3 || cs[0].Attempt != 1 || cs[0].Status != MsgSending || cs[0].Key != s.MessageKey(cs[0].ID) {
		t.Fatalf("claims = %+v", cs)
	}
	if again := claimAll(t, s, j.ID, now, time.Minute); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	got, _ := s.Job(ctx, j.ID)
	if got.Status != JobSending || got.StartedAt.IsZero() || got.Counts[MsgSending] != 3 {
		t.Fatalf("job = %+v", got)
	}
}

func TestClaimSkipsMessagesNotYetDue(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	later := time.Now().Add(time.Hour)
	j, _, err := s.CreateJob(ctx, Job{Partner: "p", Source: SourceAPI}, []Message{{Channel: "sms", Recipient: "+1", Body: "x", NextAttemptAt: later}})
	if err != nil {
		t.Fatal(err)
	}
	if cs := claimAll(t, s, j.ID, time.Now(), time.Minute); len(cs) != 0 {
		t.Fatalf("claimed a future message: %+v", cs)
	}
	if cs := claimAll(t, s, j.ID, later.Add(time.Second), time.Minute); len(cs) != 1 {
		t.Fatalf("due message not claimed: %+v", cs)
	}
}

func TestCompleteRecordsOutcomesAndFinishesTheJob(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 3)
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Minute)
	complete(t, s,
		Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, ProviderID: "p-1", At: now},
		Outcome{ID: cs[1].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeFailed, Error: "bad number", At: now},
		Outcome{ID: cs[2].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeRetry, Error: "busy", At: now, NextAttemptAt: now.Add(time.Second)},
	)
	if got, _ := s.Job(ctx, j.ID); got.Status != JobSending {
		t.Fatalf("job finished with a message queued: %+v", got)
	}
	m, _ := s.Message(ctx, cs[2].ID)
	if m.Status != MsgQueued || m.LastError != "busy" || m.Attempts != 1 {
		t.Fatalf("retried message = %+v", m)
	}
	again := claimAll(t, s, j.ID, now.Add(2*time.Second), time.Minute)
	if len(again) != 1 || again[0].Attempt != 2 {
		t.Fatalf("second claim = %+v", again)
	}
	sent := []Outcome{{ID: again[0].ID, JobID: j.ID, Attempt: 2, Kind: OutcomeSent, ProviderID: "p-3", At: now}}
	if err := s.CompleteMessages(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(ctx, again[0].ID); m.Status != MsgSent || m.ProviderID != "p-3" || m.SentAt.IsZero() || m.Attempts != 2 {
		t.Fatalf("delivered message = %+v", m)
	}
	// Applied again (the sender replays its delivery log after a crash),
	// or a stale claim's outcome: nothing changes.
	stale := []Outcome{{ID: again[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeRetry, Error: "late", At: now, NextAttemptAt: now}}
	if err := s.CompleteMessages(ctx, append(sent, stale...)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(ctx, again[0].ID); m.Status != MsgSent || m.LastError != "" || m.Attempts != 2 {
		t.Fatalf("delivered message after a replay = %+v", m)
	}
	if n, err := s.RequeueExpiredLeases(ctx, now.Add(time.Hour)); n != 0 || err != nil {
		t.Fatalf("RequeueExpiredLeases = %d, %v", n, err)
	}
	if done, err := s.FinishJob(ctx, j.ID); !done || err != nil {
		t.Fatalf("FinishJob = %v, %v", done, err)
	}
	got, _ := s.Job(ctx, j.ID)
	if got.Status != JobDone || got.FinishedAt.IsZero() || got.Counts[MsgSent] != 2 || got.Counts[MsgFailed] != 1 {
		t.Fatalf("job = %+v", got)
	}
	atts, _ := s.MessageAttempts(ctx, cs[2].ID)
	if len(atts) != 2 || atts[0].Outcome != OutcomeRetry || atts[0].Error != "busy" || atts[0].Attempt != 1 ||
		atts[1].Outcome != OutcomeSent || atts[1].Attempt != 2 || !atts[1].At.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("attempts = %+v", atts)
	}
	// The success is kept in the message row, not as an attempts row.
	var rows int
	if err := s.reader.QueryRow(`SELECT COUNT(*) FROM attempts WHERE message_id = ?`, cs[2].ID).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("attempts rows = %d, %v", rows, err)
	}
	if atts, _ := s.MessageAttempts(ctx, cs[0].ID); len(atts) != 1 || atts[0].Attempt != 1 || atts[0].Outcome != OutcomeSent {
		t.Fatalf("attempts of a message sent at once = %+v", atts)
	}
	if atts, _ := s.MessageAttempts(ctx, cs[1].ID); len(atts) != 1 || atts[0].Outcome != OutcomeFailed || atts[0].Error != "bad number" {
		t.Fatalf("attempts of a failed message = %+v", atts)
	}
}

func TestCompleteIgnoresAStaleClaim(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 1)
	now := time.Now()
	first := claimAll(t, s, j.ID, now, time.Second)
	if n, err := s.RequeueExpiredLeases(ctx, now.Add(2*time.Second)); err != nil || n != 1 {
		t.Fatalf("requeued %d, %v", n, err)
	}
	second := claimAll(t, s, j.ID, now.Add(2*time.Second), time.Minute)
	if len(second) != 1 || second[0].Attempt != 2 {
		t.Fatalf("reclaim = %+v", second)
	}
	// The first worker reports late: its release must not touch the new lease.
	complete(t, s, Outcome{ID: first[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeReleased, At: now})
	if m, _ := s.Message(ctx, first[0].ID); m.Status != MsgSending || m.Attempts != 2 {
		t.Fatalf("stale outcome changed the message: %+v", m)
	}
}

func TestRequeueExpiredLeasesLeavesLiveLeases(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a := queueTest(t, s, "p", PriorityBulk, 2)
	b := queueTest(t, s, "p", PriorityBulk, 3)
	now := time.Now()
	claimAll(t, s, a.ID, now, time.Second)
	claimAll(t, s, b.ID, now, time.Hour)
	n, err := s.RequeueExpiredLeases(ctx, now.Add(5*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("requeued %d, %v", n, err)
	}
	if got, _ := s.Job(ctx, a.ID); got.Counts[MsgQueued] != 2 {
		t.Fatalf("job a = %+v", got)
	}
	if got, _ := s.Job(ctx, b.ID); got.Counts[MsgSending] != 3 {
		t.Fatalf("job b = %+v", got)
	}
}

// A live sender's own messages whose leases ran out while their provider
// calls went on stay in flight; the others return to the queue.
func TestRequeueExpiredLeasesExceptLeavesTheHeldMessages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 4)
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Second)
	held := []LeaseRef{{cs[0].ID, cs[0].Attempt}, {cs[2].ID, cs[2].Attempt}}
	n, err := s.RequeueExpiredLeasesExcept(ctx, now.Add(5*time.Second), held)
	if err != nil || n != 2 {
		t.Fatalf("requeued %d, %v; want the 2 not held", n, err)
	}
	for i, c := range cs {
		m, err := s.Message(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := MsgQueued
		if i == 0 || i == 2 {
			want = MsgSending
		}
		if m.Status != want {
			t.Errorf("message %d: %s, want %s", i, m.Status, want)
		}
	}
	if got, _ := s.Job(ctx, j.ID); got.Counts[MsgQueued] != 2 || got.Counts[MsgSending] != 2 {
		t.Fatalf("job counts = %v", got.Counts)
	}
	// The held messages' outcomes land on their own claim.
	complete(t, s, Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: cs[0].Attempt, Kind: OutcomeSent, At: now.Add(6 * time.Second)})
	if m, _ := s.Message(ctx, cs[0].ID); m.Status != MsgSent {
		t.Fatalf("held message after its outcome: %+v", m)
	}
}

func TestReleaseUndoesTheAttempt(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 2)
	cs := claimAll(t, s, j.ID, time.Now(), time.Minute)
	if err := s.ReleaseMessages(ctx, []LeaseRef{{cs[0].ID, 1}, {cs[1].ID, 1}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Job(ctx, j.ID)
	if got.Counts[MsgQueued] != 2 {
		t.Fatalf("job = %+v", got)
	}
	if m, _ := s.Message(ctx, cs[0].ID); m.Attempts != 0 {
		t.Fatalf("message = %+v", m)
	}
}

func TestRunnableJobsOrdersTransactionalFirst(t *testing.T) {
	s := openTest(t)
	bulk := queueTest(t, s, "p", PriorityBulk, 1)
	api := queueTest(t, s, "q", PriorityTransactional, 1)
	r, err := s.RunnableJobs(context.Background(), "sms", time.Now())
	if err != nil || len(r) != 2 || r[0].ID != api.ID || r[1].ID != bulk.ID {
		t.Fatalf("runnable = %+v, %v", r, err)
	}
}

// A version before the sender's delivery log wrote sent_at first and the
// status later: such a message, left "sending" by a crash, is sent, not
// queued again.
func TestRequeueSettlesADeliveryLeftByAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 2)
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Minute)
	if _, err := s.writer.Exec(`UPDATE messages SET provider_id = 'p-1', sent_at = ? WHERE id = ?`, ms(now), cs[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueExpiredLeases(ctx, now.Add(time.Hour)); n != 1 || err != nil {
		t.Fatalf("RequeueExpiredLeases = %d, %v; want the undelivered one requeued", n, err)
	}
	if m, _ := s.Message(ctx, cs[0].ID); m.Status != MsgSent || m.ProviderID != "p-1" {
		t.Fatalf("delivered message = %+v", m)
	}
	if m, _ := s.Message(ctx, cs[1].ID); m.Status != MsgQueued {
		t.Fatalf("undelivered message = %+v", m)
	}
}
