package store

import (
	"context"
	"testing"
	"time"
)

// One claim takes due messages across the listed jobs, the first job's
// first, skips a job paused since it was listed, starts each job it took
// from, and fills each claim with its own job's partner.
func TestClaimFromJobsTakesAcrossJobsInOrder(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a := queueTest(t, s, "a", PriorityTransactional, 2)
	paused := queueTest(t, s, "b", PriorityTransactional, 2)
	c := queueTest(t, s, "c", PriorityTransactional, 3)
	jobs, err := s.RunnableJobs(ctx, "sms", time.Now())
	if err != nil || len(jobs) != 3 {
		t.Fatalf("runnable = %+v, %v", jobs, err)
	}
	if _, err := s.PauseJob(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ClaimFromJobs(ctx, jobs, "sms", time.Now(), time.Minute, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Four candidates are read (a's two, b's two); b's are not claimed:
	// its pause came after the listing.
	if len(cs) != 2 || cs[0].JobID != a.ID || cs[1].JobID != a.ID || cs[0].Partner != "a" || cs[0].Attempt != 1 {
		t.Fatalf("first claim = %+v", cs)
	}
	first := cs
	cs, err = s.ClaimFromJobs(ctx, []RunnableJob{jobs[2]}, "sms", time.Now(), time.Minute, 10)
	if err != nil || len(cs) != 3 || cs[2].Partner != "c" || cs[2].Status != MsgSending {
		t.Fatalf("second claim = %+v, %v", cs, err)
	}
	for _, id := range []int64{a.ID, c.ID} {
		if j, _ := s.Job(ctx, id); j.Status != JobSending || j.StartedAt.IsZero() {
			t.Fatalf("job %d after its claim = %+v", id, j)
		}
	}
	if j, _ := s.Job(ctx, paused.ID); j.Status != JobPaused || j.Counts[MsgQueued] != 2 {
		t.Fatalf("paused job = %+v", j)
	}
	// Ended together: one statement finishes both.
	var outs []Outcome
	for _, c := range append(first, cs...) {
		outs = append(outs, Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt, Kind: OutcomeSent, At: time.Now()})
	}
	if err := s.CompleteMessages(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if n, err := s.FinishJobsByID(ctx, []int64{a.ID, paused.ID, c.ID}); n != 2 || err != nil {
		t.Fatalf("FinishJobsByID = %d, %v; want the two delivered jobs", n, err)
	}
}
