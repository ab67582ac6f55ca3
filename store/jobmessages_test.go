package store

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A file job's messages interleaved with another job's (an API send while
// the file was read) are listed alone, in id order, page by page, with and
// without a status filter, through the job's id range.
func TestJobMessagesPagesThroughTheJobsIDRangeOnly(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 100)
	if err != nil {
		t.Fatal(err)
	}
	var api Job
	const n = 350
	for i := range n {
		if err := w.Add(Message{Channel: "sms", Line: i + 2, Recipient: "+351912345678", Body: "b" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		if i == 150 { // wait for the first batch to be written, then interleave
			deadline := time.Now().Add(10 * time.Second)
			for written := 0; written < 100; {
				if time.Now().After(deadline) {
					t.Fatal("the first batch was not written")
				}
				time.Sleep(time.Millisecond)
				s.reader.QueryRow(`SELECT COUNT(*) FROM messages WHERE job_id = ?`, w.JobID()).Scan(&written)
			}
			api = queueTest(t, s, "q", PriorityTransactional, 5)
		}
	}
	if err := w.Commit(ctx, n, nil); err != nil {
		t.Fatal(err)
	}
	job, err := s.Job(ctx, w.JobID())
	if err != nil {
		t.Fatal(err)
	}
	var first, last, apiFirst int64
	s.reader.QueryRow(`SELECT first_message_id, last_message_id FROM jobs WHERE id = ?`, job.ID).Scan(&first, &last)
	s.reader.QueryRow(`SELECT first_message_id FROM jobs WHERE id = ?`, api.ID).Scan(&apiFirst)
	if first == 0 || apiFirst < first || apiFirst > last {
		t.Fatalf("file job range [%d, %d], API job starts at %d: the test wanted them interleaved", first, last, apiFirst)
	}
	var inRange int
	s.reader.QueryRow(`SELECT COUNT(*) FROM messages WHERE job_id = ? AND id BETWEEN ? AND ?`, job.ID, first, last).Scan(&inRange)
	if inRange != n {
		t.Fatalf("%d of the job's %d messages are in its range [%d, %d]", inRange, n, first, last)
	}
	// Page by 40, as the API does.
	var lines []int
	var after int64
	for {
		got := 0
		err := s.JobMessages(ctx, job.ID, "", after, 40, func(m Message) error {
			if m.JobID != job.ID || m.ID <= after {
				t.Fatalf("page after %d: message %+v", after, m)
			}
			lines = append(lines, m.Line)
			after = m.ID
			got++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got < 40 {
			break
		}
	}
	if len(lines) != n {
		t.Fatalf("paged %d messages, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l != i+2 {
			t.Fatalf("message %d has line %d: not in id order", i, l)
		}
	}
	// A status filter over the same range.
	cs := claimAll(t, s, job.ID, time.Now(), time.Minute)
	var sending int
	s.JobMessages(ctx, job.ID, MsgSending, 0, 0, func(m Message) error { sending++; return nil })
	if sending != len(cs) {
		t.Fatalf("listed %d sending messages, claimed %d", sending, len(cs))
	}
	var apiMsgs int
	s.JobMessages(ctx, api.ID, "", 0, 0, func(m Message) error { apiMsgs++; return nil })
	if apiMsgs != 5 {
		t.Fatalf("API job lists %d messages, want 5", apiMsgs)
	}
}

// 0008 finds the range of jobs written before it.
func TestMessageRangeMigrationBackfillsExistingJobs(t *testing.T) {
	skipOnPostgres(t, "SQLite's migration history (0008); PostgreSQL starts at the 0032 baseline")
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dropgate.db")
	old := openAtVersion(t, path, 7)
	if _, err := old.Exec(`INSERT INTO jobs (id, partner, source, status, total, created_at) VALUES (1, 'p', 'api', 'queued', 2, 0), (2, 'p', 'api', 'done', 0, 0);
		INSERT INTO messages (id, job_id, channel, recipient, body, status, next_attempt_at, updated_at) VALUES
			(10, 1, 'sms', '+1', 'a', 'queued', 0, 0), (12, 1, 'sms', '+2', 'b', 'queued', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	migs, _ := loadMigrations()
	for _, m := range migs {
		if m.version == 8 {
			if err := (&Store{writer: old}).apply(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, want := range map[int64][2]int64{1: {10, 12}, 2: {0, 0}} {
		var first, last int64
		if err := old.QueryRow(`SELECT first_message_id, last_message_id FROM jobs WHERE id = ?`, id).Scan(&first, &last); err != nil ||
			first != want[0] || last != want[1] {
			t.Fatalf("job %d range = [%d, %d] (%v), want %v", id, first, last, err, want)
		}
	}
}
