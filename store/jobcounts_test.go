package store

import (
	"context"
	"testing"
	"time"
)

// A finished job's counts come from the tally taken when it finished; an
// unfinished job's from its messages; a retry reopens the job and its
// counts are live again.
func TestFinishedJobCountsComeFromTheTallyTakenAtTheEnd(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 3)
	live := queueTest(t, s, "q", PriorityBulk, 2)
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Minute)
	complete(t, s,
		Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now},
		Outcome{ID: cs[1].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeFailed, Error: "no", At: now},
		Outcome{ID: cs[2].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now},
	)
	var tallied int
	if err := s.reader.QueryRow(`SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE job_id = ?`, j.ID).Scan(&tallied); err != nil || tallied != 3 {
		t.Fatalf("tally of the finished job = %d, %v", tallied, err)
	}
	if err := s.reader.QueryRow(`SELECT COUNT(*) FROM job_counts WHERE job_id = ?`, live.ID).Scan(&tallied); err != nil || tallied != 0 {
		t.Fatalf("tally rows of an unfinished job = %d, %v", tallied, err)
	}
	check := func(what string, wantJob, wantAll map[string]int) {
		t.Helper()
		got, err := s.Job(ctx, j.ID)
		if err != nil || !sameCounts(got.Counts, wantJob) {
			t.Fatalf("%s: Job counts = %v, %v; want %v", what, got.Counts, err, wantJob)
		}
		list, err := s.ListJobs(ctx, JobFilter{Partner: "p"})
		if err != nil || len(list) != 1 || !sameCounts(list[0].Counts, wantJob) {
			t.Fatalf("%s: ListJobs = %+v, %v", what, list, err)
		}
		all, err := s.StatusCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gotAll := map[string]int{}
		for _, c := range all {
			if c.Kind == "messages" && c.Channel == "sms" {
				gotAll[c.Status] += int(c.Count)
			}
		}
		if !sameCounts(gotAll, wantAll) {
			t.Fatalf("%s: StatusCounts messages = %v, want %v", what, gotAll, wantAll)
		}
	}
	check("finished", map[string]int{MsgSent: 2, MsgFailed: 1}, map[string]int{MsgSent: 2, MsgFailed: 1, MsgQueued: 2})

	// The readers use the tally, not the messages (this is what keeps a
	// million-row job from being counted at every request).
	if _, err := s.writer.Exec(`UPDATE job_counts SET n = n + 100 WHERE job_id = ? AND status = 'sent'`, j.ID); err != nil {
		t.Fatal(err)
	}
	check("tally read", map[string]int{MsgSent: 102, MsgFailed: 1}, map[string]int{MsgSent: 102, MsgFailed: 1, MsgQueued: 2})

	if _, err := s.RetryJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	check("reopened", map[string]int{MsgSent: 2, MsgQueued: 1}, map[string]int{MsgSent: 2, MsgQueued: 3})
	again := claimAll(t, s, j.ID, time.Now(), time.Minute)
	complete(t, s, Outcome{ID: again[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now})
	check("finished again", map[string]int{MsgSent: 3}, map[string]int{MsgSent: 3, MsgQueued: 2})
}

func sameCounts(a, b map[string]int) bool {
	for k, v := range a {
		if v != 0 && b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
