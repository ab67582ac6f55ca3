package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPauseHidesTheJobFromTheSenderAndResumeBringsItBack(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 3)
	p, err := s.PauseJob(ctx, j.ID)
	if err != nil || p.Status != JobPaused || p.Counts[MsgQueued] != 3 {
		t.Fatalf("pause = %+v, %v", p, err)
	}
	if p2, err := s.PauseJob(ctx, j.ID); err != nil || p2.Status != JobPaused {
		t.Fatalf("second pause = %+v, %v", p2, err)
	}
	if r, _ := s.RunnableJobs(ctx, "sms", time.Now()); len(r) != 0 {
		t.Fatalf("paused job is runnable: %+v", r)
	}
	if cs := claimAll(t, s, j.ID, time.Now(), time.Minute); len(cs) != 0 {
		t.Fatalf("claimed from a paused job: %+v", cs)
	}
	r, err := s.ResumeJob(ctx, j.ID)
	if err != nil || r.Status != JobQueued {
		t.Fatalf("resume = %+v, %v", r, err)
	}
	if r2, err := s.ResumeJob(ctx, j.ID); err != nil || r2.Status != JobQueued {
		t.Fatalf("second resume = %+v, %v", r2, err)
	}
	if cs := claimAll(t, s, j.ID, time.Now(), time.Minute); len(cs) != 3 {
		t.Fatalf("claims after resume = %+v", cs)
	}
}

func TestResumeOfAStartedJobWhoseMessagesEndedFinishesIt(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 1)
	cs := claimAll(t, s, j.ID, time.Now(), time.Minute)
	if _, err := s.PauseJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	// The in-flight message ends while the job is paused.
	complete(t, s, Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: time.Now()})
	if got, _ := s.Job(ctx, j.ID); got.Status != JobPaused {
		t.Fatalf("paused job changed: %+v", got)
	}
	r, err := s.ResumeJob(ctx, j.ID)
	if err != nil || r.Status != JobDone || r.FinishedAt.IsZero() {
		t.Fatalf("resume = %+v, %v", r, err)
	}
}

func TestCancelCancelsQueuedMessagesAndLetsInFlightOnesFinish(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 5)
	cs, err := s.ClaimMessages(ctx, j.ID, "sms", time.Now(), time.Minute, 2)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim = %+v, %v", cs, err)
	}
	c, err := s.CancelJob(ctx, j.ID)
	if err != nil || c.Status != JobCancelled || c.Counts[MsgCancelled] != 3 || c.Counts[MsgSending] != 2 || !c.FinishedAt.IsZero() {
		t.Fatalf("cancel = %+v, %v", c, err)
	}
	complete(t, s,
		Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: time.Now()},
		Outcome{ID: cs[1].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeRetry, At: time.Now(), NextAttemptAt: time.Now()})
	// The transient failure is not queued again: its job is cancelled.
	got, _ := s.Job(ctx, j.ID)
	if got.Status != JobCancelled || got.Counts[MsgSent] != 1 || got.Counts[MsgCancelled] != 4 || got.FinishedAt.IsZero() {
		t.Fatalf("after in-flight ended = %+v", got)
	}
	if c2, err := s.CancelJob(ctx, j.ID); err != nil || c2.Status != JobCancelled {
		t.Fatalf("second cancel = %+v, %v", c2, err)
	}
	if r, _ := s.RunnableJobs(ctx, "sms", time.Now()); len(r) != 0 {
		t.Fatalf("cancelled job runnable: %+v", r)
	}
}

func TestJobControlRefusesFinishedJobsAndUnknownIDs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 1)
	cs := claimAll(t, s, j.ID, time.Now(), time.Minute)
	complete(t, s, Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: time.Now()})
	for name, act := range map[string]func(context.Context, int64) (Job, error){
		"pause": s.PauseJob, "resume": s.ResumeJob, "cancel": s.CancelJob,
	} {
		if _, err := act(ctx, j.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("%s of a done job: %v, want ErrConflict", name, err)
		}
		if _, err := act(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a missing job: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.RetryJob(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("retry of a missing job: %v", err)
	}
	if got, err := s.RetryJob(ctx, j.ID); err != nil || got.Status != JobDone {
		t.Errorf("retry of a done job with nothing failed = %+v, %v", got, err)
	}
}

func TestRetryRequeuesFailedMessagesAndReopensTheJob(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 2)
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Minute)
	complete(t, s,
		Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now},
		Outcome{ID: cs[1].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeFailed, Error: "nope", At: now})
	if err := s.MarkJobReported(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	r, err := s.RetryJob(ctx, j.ID)
	if err != nil || r.Status != JobSending || r.Counts[MsgQueued] != 1 || !r.FinishedAt.IsZero() || !r.ReportedAt.IsZero() {
		t.Fatalf("retry = %+v, %v", r, err)
	}
	again := claimAll(t, s, j.ID, time.Now(), time.Minute)
	if len(again) != 1 || again[0].Attempt != 1 || again[0].AgeFrom.Before(now.Truncate(time.Millisecond)) {
		t.Fatalf("reclaim = %+v", again)
	}
	complete(t, s, Outcome{ID: again[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: time.Now()})
	if got, _ := s.Job(ctx, j.ID); got.Status != JobDone || got.Counts[MsgSent] != 2 {
		t.Fatalf("job = %+v", got)
	}
	if atts, _ := s.MessageAttempts(ctx, cs[1].ID); len(atts) != 2 || atts[0].Outcome != OutcomeFailed || atts[1].Outcome != OutcomeSent {
		t.Fatalf("attempt history = %+v", atts)
	}
}
