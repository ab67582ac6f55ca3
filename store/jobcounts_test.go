package store

import (
	"context"
	"testing"
	"time"
)

// exactCounts recounts a job's messages from the messages themselves.
func exactCounts(t *testing.T, s *Store, jobID int64) map[string]int {
	t.Helper()
	rows, err := s.reader.Query(`SELECT status, COUNT(*) FROM messages WHERE job_id = ? GROUP BY status`, jobID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		out[st] = n
	}
	return out
}

// Every job's counts are a live tally kept by the statements that change
// messages (migration 0012): the readers read the tally, and the tally
// equals a recount after every kind of change (API insert, file job
// queued, claim, outcomes, retry, cancel, abort).
func TestJobCountsAreALiveTallyEqualToARecount(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 3)
	live := queueTest(t, s, "q", PriorityBulk, 2)
	fileID, err := s.CreateFile(ctx, File{Partner: "f", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "f", fileID, "inbox/a.csv", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := w.Add(Message{Partner: "f", Channel: "sms", Line: i + 2, Recipient: "+351912345678", Body: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, 25, nil); err != nil {
		t.Fatal(err)
	}
	fileJob := w.JobID()
	abortFile, _ := s.CreateFile(ctx, File{Partner: "f", Name: "inbox/b.csv"})
	aw, err := s.BeginFileJob(ctx, "f", abortFile, "inbox/b.csv", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		aw.Add(Message{Partner: "f", Channel: "sms", Line: i + 2, Recipient: "+351912345678", Body: "b"})
	}
	if err := aw.Abort(ctx); err != nil {
		t.Fatal(err)
	}

	check := func(what string) {
		t.Helper()
		for _, id := range []int64{j.ID, live.ID, fileJob} {
			got, err := s.Job(ctx, id)
			if want := exactCounts(t, s, id); err != nil || !sameCounts(got.Counts, want) {
				t.Fatalf("%s: job %d counts = %v, %v; recount %v", what, id, got.Counts, err, want)
			}
		}
		all, err := s.StatusCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, c := range all {
			got[c.Kind+"/"+c.Channel+"/"+c.Status] += int(c.Count)
		}
		want := map[string]int{}
		for _, q := range []string{`SELECT 'files/' || '/' || status, COUNT(*) FROM files GROUP BY status`,
			`SELECT 'jobs/' || '/' || status, COUNT(*) FROM jobs GROUP BY status`,
			`SELECT 'messages/' || channel || '/' || status, COUNT(*) FROM messages WHERE job_id IN (SELECT id FROM jobs WHERE status <> 'ingesting') GROUP BY channel, status`} {
			rows, err := s.reader.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k string
				var n int
				rows.Scan(&k, &n)
				want[k] = n
			}
			rows.Close()
		}
		if !sameCounts(got, want) {
			t.Fatalf("%s: StatusCounts = %v, recount %v", what, got, want)
		}
		var left int
		s.reader.QueryRow(`SELECT COUNT(*) FROM job_counts WHERE job_id = ? AND n <> 0`, aw.JobID()).Scan(&left)
		if left != 0 {
			t.Fatalf("%s: an aborted job still has %d tally rows", what, left)
		}
	}
	check("queued")
	now := time.Now()
	cs := claimAll(t, s, j.ID, now, time.Minute)
	check("claimed")
	complete(t, s,
		Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now},
		Outcome{ID: cs[1].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeFailed, Error: "no", At: now},
		Outcome{ID: cs[2].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now},
	)
	check("finished")
	fc, err := s.ClaimMessages(ctx, fileJob, "sms", now, time.Minute, 7)
	if err != nil || len(fc) != 7 {
		t.Fatalf("claim of the file job = %d, %v", len(fc), err)
	}
	complete(t, s, Outcome{ID: fc[0].ID, JobID: fileJob, Attempt: 1, Kind: OutcomeSent, At: now})
	check("file job sending")
	if _, err := s.CancelJob(ctx, fileJob); err != nil {
		t.Fatal(err)
	}
	check("file job cancelled")

	// The readers use the tally, not the messages (this is what keeps a
	// million-row job from being counted at every request).
	if _, err := s.writer.Exec(`UPDATE job_counts SET n = n + 100 WHERE job_id = ? AND status = 'sent'`, j.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := s.ListJobs(ctx, JobFilter{Partner: "p"})
	if len(got) != 1 || got[0].Counts[MsgSent] != 102 {
		t.Fatalf("ListJobs does not read the tally: %+v", got)
	}
	s.writer.Exec(`UPDATE job_counts SET n = n - 100 WHERE job_id = ? AND status = 'sent'`, j.ID)
	s.writer.Exec(`UPDATE status_totals SET n = n + 100 WHERE kind = 'messages' AND status = 'sent'`)
	all, err := s.StatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, c := range all {
		if c.Kind == "messages" && c.Status == MsgSent {
			sent += int(c.Count)
		}
	}
	if sent != 103 {
		t.Fatalf("StatusCounts sent = %d, want the totals' 103", sent)
	}
	s.writer.Exec(`UPDATE status_totals SET n = n - 100 WHERE kind = 'messages' AND status = 'sent'`)

	if _, err := s.RetryJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	check("reopened")
	again := claimAll(t, s, j.ID, time.Now(), time.Minute)
	complete(t, s, Outcome{ID: again[0].ID, JobID: j.ID, Attempt: 1, Kind: OutcomeSent, At: now})
	check("finished again")

	var minutes int
	s.reader.QueryRow(`SELECT COALESCE(SUM(sent), 0) FROM channel_minutes WHERE channel = 'sms'`).Scan(&minutes)
	if minutes != 4 {
		t.Fatalf("channel_minutes sent = %d, want 4", minutes)
	}
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

// The sender's claims and deliveries are tallied per batch by the store,
// not by a trigger per row (migration 0016): a claim across jobs, an
// outcome applied twice (the delivery log's replay), a stale claim's
// outcome, and deliveries settled at start or when their lease ran out
// all leave the tally equal to a recount, and channel_minutes counts each
// delivery once.
func TestSenderTransitionsAreTalliedPerBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	a := queueTest(t, s, "p", PriorityTransactional, 4)
	b := queueTest(t, s, "q", PriorityTransactional, 3)
	check := func(what string) {
		t.Helper()
		for _, id := range []int64{a.ID, b.ID} {
			got, err := s.Job(ctx, id)
			if want := exactCounts(t, s, id); err != nil || !sameCounts(got.Counts, want) {
				t.Fatalf("%s: job %d counts = %v, %v; recount %v", what, id, got.Counts, err, want)
			}
		}
	}
	sentMinutes := func() int {
		var n int
		s.reader.QueryRow(`SELECT COALESCE(SUM(sent), 0) FROM channel_minutes WHERE channel = 'sms'`).Scan(&n)
		return n
	}
	now := time.Now()
	cs, err := s.ClaimFromJobs(ctx, []RunnableJob{{ID: a.ID}, {ID: b.ID}}, "sms", now, time.Minute, 100)
	if err != nil || len(cs) != 7 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	check("claimed across jobs")
	// Claiming again finds nothing and moves nothing.
	if again, err := s.ClaimFromJobs(ctx, []RunnableJob{{ID: a.ID}, {ID: b.ID}}, "sms", now, time.Minute, 100); err != nil || len(again) != 0 {
		t.Fatalf("second claim = %d, %v", len(again), err)
	}
	check("claimed again")

	outs := []Outcome{
		{ID: cs[0].ID, JobID: cs[0].JobID, Attempt: 1, Kind: OutcomeSent, ProviderID: "x", At: now},
		{ID: cs[4].ID, JobID: cs[4].JobID, Attempt: 1, Kind: OutcomeSent, ProviderID: "y", At: now},
		{ID: cs[1].ID, JobID: cs[1].JobID, Attempt: 2, Kind: OutcomeSent, At: now}, // stale: not this claim
	}
	if err := s.CompleteMessages(ctx, outs); err != nil {
		t.Fatal(err)
	}
	check("sent")
	if err := s.CompleteMessages(ctx, outs); err != nil { // the log replayed
		t.Fatal(err)
	}
	check("sent twice")
	if got := sentMinutes(); got != 2 {
		t.Fatalf("channel_minutes sent = %d, want 2", got)
	}

	// Deliveries recorded by a version before the delivery log: sent_at
	// set, status still sending. One lease ran out, the rest are settled at
	// start.
	if _, err := s.writer.Exec(`UPDATE messages SET sent_at = ?, lease_until = ? WHERE id = ?`, ms(now), ms(now.Add(-time.Second)), cs[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.Exec(`UPDATE messages SET sent_at = ? WHERE id IN (?, ?)`, ms(now), cs[2].ID, cs[5].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequeueExpiredLeases(ctx, now); err != nil {
		t.Fatal(err)
	}
	check("settled when the lease ran out")
	if err := s.SettleAllDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
	check("settled at start")
	if got := sentMinutes(); got != 5 {
		t.Fatalf("channel_minutes sent = %d, want 5", got)
	}
	complete(t, s,
		Outcome{ID: cs[3].ID, JobID: cs[3].JobID, Attempt: 1, Kind: OutcomeSent, At: now},
		Outcome{ID: cs[6].ID, JobID: cs[6].JobID, Attempt: 1, Kind: OutcomeFailed, Error: "no", At: now})
	check("finished")
	if got := sentMinutes(); got != 6 {
		t.Fatalf("channel_minutes sent = %d, want 6", got)
	}
}
