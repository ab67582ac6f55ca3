package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVarsJSONMatchesEncodingJSON(t *testing.T) {
	for _, vars := range []map[string]string{
		{"a": "1"},
		{"first_name": "José", "quote": `say "hi"\now`, "ctl": "a\x01b\tc\r\n", "bad": "x\xffy", "sep": "a\u2028b", "html": "<b>&</b>"},
		{"": "", "z": "last", "m": "middle"},
	} {
		got := varsJSON(vars)
		var back map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("varsJSON(%q) = %s: %v", vars, got, err)
		}
		want, _ := json.Marshal(vars)
		var wantBack map[string]string
		json.Unmarshal(want, &wantBack)
		if !reflect.DeepEqual(back, wantBack) {
			t.Errorf("varsJSON round trip = %q, encoding/json gives %q", back, wantBack)
		}
	}
}

func TestJobWriterInsertsMultiRowBatchesInOrder(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 150)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*150 + rowsPerInsert + 7 // full batches, then a remainder with a partial statement
	for i := range n {
		if err := w.Add(Message{Partner: "p", Channel: "sms", Line: i + 2, Recipient: "+351912345678", Body: "b" + strconv.Itoa(i),
			Vars: map[string]string{"i": strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, n, nil); err != nil {
		t.Fatal(err)
	}
	i := 0
	err = s.JobMessages(ctx, w.JobID(), "", 0, 0, func(m Message) error {
		if m.Line != i+2 || m.Body != "b"+strconv.Itoa(i) || m.Vars["i"] != strconv.Itoa(i) || m.Status != MsgQueued {
			t.Fatalf("message %d = %+v", i, m)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("read %d messages (%v), want %d", i, err, n)
	}
}

func TestJobWriterStoresEveryValueWhateverItsChunkShares(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 1000)
	if err != nil {
		t.Fatal(err)
	}
	sendAt := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	var want []Message
	for i := range 3*rowsPerInsert + 5 {
		m := Message{Partner: "p", Channel: "sms", Line: i + 2, Ref: "r" + strconv.Itoa(i), Recipient: "+35191234" + strconv.Itoa(1000+i),
			Body: "b" + strconv.Itoa(i), Format: "text"}
		switch {
		case i < rowsPerInsert: // all shared, all defaults
		case i < 2*rowsPerInsert: // shared, not defaults
			m.Channel, m.Subject, m.Format, m.Sender, m.NextAttemptAt = "email", "Hi", "html", "A <a@example.com>", sendAt
			m.ExpiresAt, m.Vars = sendAt.Add(time.Hour), map[string]string{"x": "1"}
		default: // every other row differs
			if i%2 == 0 {
				m.Channel, m.Subject, m.Sender, m.NextAttemptAt, m.ExpiresAt = "email", "S"+strconv.Itoa(i), "f", sendAt, sendAt.Add(time.Minute)
				m.Vars = map[string]string{"i": strconv.Itoa(i)}
			}
		}
		want = append(want, m)
		if err := w.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, len(want), nil); err != nil {
		t.Fatal(err)
	}
	i := 0
	err = s.JobMessages(ctx, w.JobID(), "", 0, 0, func(m Message) error {
		g := want[i]
		if m.Partner != "p" || m.Priority != PriorityBulk || m.Status != MsgQueued || m.Channel != g.Channel || m.Line != g.Line ||
			m.Ref != g.Ref || m.Recipient != g.Recipient || m.Subject != g.Subject || m.Body != g.Body || m.Format != g.Format ||
			m.Sender != g.Sender || !m.ExpiresAt.Equal(g.ExpiresAt) || len(m.Vars) != len(g.Vars) || m.CreatedAt.IsZero() ||
			(!g.NextAttemptAt.IsZero() && !m.NextAttemptAt.Equal(g.NextAttemptAt)) || (g.NextAttemptAt.IsZero() && m.NextAttemptAt.IsZero()) {
			t.Fatalf("message %d = %+v, want %+v", i, m, g)
		}
		for k, v := range g.Vars {
			if m.Vars[k] != v {
				t.Fatalf("message %d vars = %v, want %v", i, m.Vars, g.Vars)
			}
		}
		i++
		return nil
	})
	if err != nil || i != len(want) {
		t.Fatalf("read %d messages (%v), want %d", i, err, len(want))
	}
}

func TestJobWriterRaisesCheckpointThresholdOnlyWhileWriting(t *testing.T) {
	skipOnPostgres(t, "the WAL checkpoint threshold is SQLite's")
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	threshold := func() int {
		var n int
		if err := s.writer.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, commit := range []bool{true, false} {
		fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := threshold(); got != bulkCheckpointPages {
			t.Errorf("while writing: wal_autocheckpoint = %d, want %d", got, bulkCheckpointPages)
		}
		if err := w.Add(Message{Partner: "p", Channel: "sms", Line: 2, Recipient: "+1", Body: "b"}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = w.Commit(ctx, 1, nil)
		} else {
			err = w.Abort(ctx)
			if err == nil {
				err = w.Abort(ctx) // a second end releases nothing more
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := threshold(); got != 1000 {
			t.Errorf("after the job (commit %v): wal_autocheckpoint = %d, want 1000", commit, got)
		}
	}
}

// TestJobWriterInsertFailureRollsBackAndLeavesTheWriterUsable: a batch that
// SQLite refuses fails the job with the lines of the statement, nothing of
// the job stays, and the writer connection (the flusher used it through
// the driver) is out of its transaction for the next user.
func TestJobWriterInsertFailureRollsBackAndLeavesTheWriterUsable(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	refuseRecipient(t, s, "refused")
	fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		m := Message{Channel: "sms", Line: i + 2, Recipient: "+1", Body: "x"}
		if i == 150 {
			m.Recipient = "refused"
		}
		w.Add(m)
	}
	err = w.Commit(ctx, 250, nil)
	lines := "lines 102 to 165" // the refused row's 64-row INSERT
	if onPostgres {
		lines = "lines 102 to 201" // the refused row's batch, one COPY
	}
	if err == nil || !strings.Contains(err.Error(), lines) || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("commit = %v, want the refused statement's %s and the database's reason", err, lines)
	}
	var n int
	s.writer.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n)
	if n != 0 {
		t.Errorf("%d messages left of the failed job", n)
	}
	if _, _, err := s.CreateJob(ctx, Job{Partner: "p", Source: SourceAPI}, []Message{{Channel: "sms", Recipient: "+1", Body: "y"}}); err != nil {
		t.Fatalf("the writer after a failed batch: %v", err)
	}
}

func TestJobWriterAbortAfterCommitKeepsTheJob(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := w.Add(Message{Channel: "sms", Line: i + 2, Recipient: "+1", Body: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, 25, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil { // what a deferred Abort does
		t.Fatalf("Abort after Commit = %v, want nil", err)
	}
	j, err := s.Job(ctx, w.JobID())
	if err != nil || j.Status != JobQueued || j.Total != 25 {
		t.Fatalf("job after Commit then Abort = %+v, %v; want queued with 25 messages", j, err)
	}
	var n int
	s.writer.QueryRow(`SELECT COUNT(*) FROM messages WHERE job_id = ?`, w.JobID()).Scan(&n)
	if n != 25 {
		t.Errorf("%d messages left, want 25", n)
	}
}

// TestJobWritersOfTwoFilesAtOnceKeepTheirOwnMessages: two file jobs written
// at the same time (two ingest workers) share the single writer connection
// and the widened checkpoint threshold; each job gets exactly its own
// messages, in order, and the threshold comes back only after both.
func TestJobWritersOfTwoFilesAtOnceKeepTheirOwnMessages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const rows = 3*500 + 77
	writers := make([]*JobWriter, 2)
	for k := range writers {
		fileID, err := s.CreateFile(ctx, File{Partner: "p" + strconv.Itoa(k), Name: "inbox/a.csv"})
		if err != nil {
			t.Fatal(err)
		}
		if writers[k], err = s.BeginFileJob(ctx, "p"+strconv.Itoa(k), fileID, "inbox/a.csv", 500); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2)
	for k, w := range writers {
		go func() {
			for i := range rows {
				if err := w.Add(Message{Channel: "sms", Line: i + 2, Recipient: "+1", Body: strconv.Itoa(k) + "/" + strconv.Itoa(i)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var threshold int
	if err := writers[0].Commit(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	if !onPostgres { // the threshold is SQLite's WAL upkeep
		s.writer.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&threshold)
		if threshold != bulkCheckpointPages {
			t.Errorf("with one job still writing: wal_autocheckpoint = %d, want %d", threshold, bulkCheckpointPages)
		}
	}
	if err := writers[1].Commit(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	if !onPostgres {
		s.writer.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&threshold)
		if threshold != 1000 {
			t.Errorf("after both jobs: wal_autocheckpoint = %d, want 1000", threshold)
		}
	}
	for k, w := range writers {
		i := 0
		err := s.JobMessages(ctx, w.JobID(), "", 0, 0, func(m Message) error {
			if want := strconv.Itoa(k) + "/" + strconv.Itoa(i); m.Body != want || m.Line != i+2 || m.Partner != "p"+strconv.Itoa(k) {
				t.Fatalf("job %d message %d = %+v, want body %s", k, i, m, want)
			}
			i++
			return nil
		})
		if err != nil || i != rows {
			t.Fatalf("job %d: read %d messages (%v), want %d", k, i, err, rows)
		}
	}
}
