package store

import (
	"context"
	"testing"
	"time"
)

// No trigger counts a message's status change (migration 0040): every
// statement that makes one tallies it. Each kind of change off the
// sender's hot path — a retried, failed, expired, suppressed or released
// outcome, a release on stop, a lease that ran out, a cancel with messages
// in flight (their later outcomes cancel them) and a retry of the failed
// ones — leaves job_counts equal to a recount, and channel_minutes counts
// each failed message once.
func TestEveryStatusChangeIsTalliedByItsStatement(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 10)
	check := func(what string) {
		t.Helper()
		got, err := s.Job(ctx, j.ID)
		if want := exactCounts(t, s, j.ID); err != nil || !sameCounts(got.Counts, want) {
			t.Fatalf("%s: job counts = %v, %v; recount %v", what, got.Counts, err, want)
		}
	}
	failedMinutes := func() int {
		var n int
		s.reader.QueryRow(`SELECT COALESCE(SUM(failed), 0) FROM channel_minutes WHERE channel = 'sms'`).Scan(&n)
		return n
	}
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Minute)
	if len(cs) != 10 {
		t.Fatalf("claimed %d, want 10", len(cs))
	}
	check("claimed")
	out := func(i int, kind string) Outcome {
		return Outcome{ID: cs[i].ID, JobID: j.ID, Attempt: 1, Kind: kind, Error: "e", At: now, NextAttemptAt: now.Add(time.Hour)}
	}
	if err := s.CompleteMessages(ctx, []Outcome{out(0, OutcomeRetry), out(1, OutcomeExpired), out(2, OutcomeSuppressed),
		out(3, OutcomeReleased), out(4, OutcomeFailed), out(4, OutcomeFailed)}); err != nil { // the last one replayed
		t.Fatal(err)
	}
	check("outcomes")
	if got := failedMinutes(); got != 2 {
		t.Fatalf("channel_minutes failed = %d, want 2", got)
	}
	if err := s.ReleaseMessages(ctx, []LeaseRef{{cs[5].ID, 1}}); err != nil {
		t.Fatal(err)
	}
	check("released on stop")

	// cs[6] is claimed again with a lease that runs out.
	if _, err := s.writer.Exec(`UPDATE messages SET lease_until = ? WHERE id = ?`, ms(now.Add(-time.Second)), cs[6].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueExpiredLeases(ctx, now); err != nil || n != 1 {
		t.Fatalf("requeued %d, %v; want 1", n, err)
	}
	check("lease ran out")

	// Cancelled with cs[7..9] in flight: the queued ones are cancelled at
	// once, the ones in flight when their outcome comes back.
	if _, err := s.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	check("cancelled")
	if err := s.CompleteMessages(ctx, []Outcome{out(7, OutcomeRetry), out(8, OutcomeReleased), out(9, OutcomeFailed)}); err != nil {
		t.Fatal(err)
	}
	check("in flight when cancelled")
	if got := exactCounts(t, s, j.ID); got[MsgCancelled] != 6 || got[MsgFailed] != 3 || got[MsgSuppressed] != 1 {
		t.Fatalf("recount = %v, want 6 cancelled, 3 failed, 1 suppressed", got)
	}
	if got := failedMinutes(); got != 3 {
		t.Fatalf("channel_minutes failed = %d, want 3", got)
	}

	k := queueTest(t, s, "q", PriorityBulk, 3)
	now = time.Now()
	ks := claimAll(t, s, k.ID, now, time.Minute)
	complete(t, s, Outcome{ID: ks[0].ID, JobID: k.ID, Attempt: 1, Kind: OutcomeFailed, Error: "e", At: now},
		Outcome{ID: ks[1].ID, JobID: k.ID, Attempt: 1, Kind: OutcomeFailed, Error: "e", At: now},
		Outcome{ID: ks[2].ID, JobID: k.ID, Attempt: 1, Kind: OutcomeSent, At: now})
	if _, err := s.RetryJob(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(ctx, k.ID)
	if want := exactCounts(t, s, k.ID); err != nil || !sameCounts(got.Counts, want) || want[MsgQueued] != 2 {
		t.Fatalf("retried: job counts = %v, %v; recount %v (want 2 queued)", got.Counts, err, want)
	}
}
