package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// The tests of this file go once through the store methods that ingest,
// the admin API and the console call and that no other store test
// reaches, so each of their queries runs on both engines (TestMain runs
// every test on SQLite, then on PostgreSQL).

// queueFileJob records a file and commits a file job of n messages for it.
func queueFileJob(t *testing.T, s *Store, partner, name, sha string, n int) (File, Job) {
	t.Helper()
	ctx := context.Background()
	id, err := s.CreateFile(ctx, File{Partner: partner, Name: name, SHA256: sha})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetFileContent(ctx, id, int64(10*n+1), sha); err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, partner, id, name, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort(ctx)
	for i := range n {
		if err := w.Add(Message{Channel: "sms", Line: i + 2, Recipient: "+351910000000", Body: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetJobTemplates(ctx, w.JobID(), []TemplateRef{{Name: "t", Version: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, n, nil); err != nil {
		t.Fatal(err)
	}
	f, err := s.File(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, w.JobID())
	if err != nil {
		t.Fatal(err)
	}
	return f, j
}

func TestFileRecordsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	f, j := queueFileJob(t, s, "p", "inbox/a.csv", "sha-a", 3)
	if f.Status != FileQueued || f.JobID != j.ID || f.Size != 31 || f.SHA256 != "sha-a" || j.Total != 3 || j.Counts[MsgQueued] != 3 {
		t.Fatalf("file %+v, job %+v", f, j)
	}
	if len(j.Templates) != 1 || j.Templates[0] != (TemplateRef{Name: "t", Version: 2}) {
		t.Errorf("job templates = %v", j.Templates)
	}
	if got, err := s.FileBySHA256(ctx, "p", "sha-a"); err != nil || got.ID != f.ID {
		t.Errorf("FileBySHA256 = %+v, %v", got, err)
	}
	if _, err := s.FileBySHA256(ctx, "q", "sha-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another partner's hash: %v", err)
	}
	if got, err := s.LastFileNamed(ctx, "p", "inbox/a.csv"); err != nil || got.ID != f.ID {
		t.Errorf("LastFileNamed = %+v, %v", got, err)
	}
	// A later upload of the same base name elsewhere in the home, with
	// other content, owns the reports; the same bytes again do not.
	later, _ := queueFileJob(t, s, "p", "inbox/sub/a.csv", "sha-a", 1)
	if owns, err := s.LaterFileWithBase(ctx, "p", f.ID, "a.csv"); err != nil || owns {
		t.Errorf("same bytes again: LaterFileWithBase = %v, %v", owns, err)
	}
	queueFileJob(t, s, "p", "x/aa.csv", "sha-c", 1) // another base that ends the same
	if owns, err := s.LaterFileWithBase(ctx, "p", f.ID, "a.csv"); err != nil || owns {
		t.Errorf("another base: LaterFileWithBase = %v, %v", owns, err)
	}
	queueFileJob(t, s, "p", "x/a.csv", "sha-b", 1)
	if owns, err := s.LaterFileWithBase(ctx, "p", f.ID, "a.csv"); err != nil || !owns {
		t.Errorf("other content: LaterFileWithBase = %v, %v", owns, err)
	}

	bad, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/bad.csv", SHA256: "sha-bad"})
	if err != nil {
		t.Fatal(err)
	}
	errs := []FileError{{Line: 3, Column: "phone", Value: "x", Error: "bad phone"}, {Line: 2, Column: "email", Error: "bad email"},
		{Line: 3, Column: "email", Error: "second of line 3"}}
	if err := s.RejectFile(ctx, bad, "2 bad rows", 4, errs); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFileArchive(ctx, bad, "archive/bad.csv"); err != nil {
		t.Fatal(err)
	}
	rf, _ := s.File(ctx, bad)
	if rf.Status != FileRejected || rf.Error != "2 bad rows" || rf.RowsTotal != 4 || rf.RowsBad != 2 || rf.ArchivePath != "archive/bad.csv" {
		t.Errorf("rejected file = %+v", rf)
	}
	got, err := s.FileErrors(ctx, bad, 10)
	want := []FileError{errs[1], errs[0], errs[2]} // by line, then as stored
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("FileErrors = %+v, %v; want %+v", got, err, want)
	}

	list, err := s.ListFiles(ctx, FileFilter{Partner: "p", Status: FileQueued, Limit: 2})
	if err != nil || len(list) != 2 || list[0].ID <= list[1].ID {
		t.Fatalf("ListFiles = %+v, %v", list, err)
	}
	next, err := s.ListFiles(ctx, FileFilter{Partner: "p", Status: FileQueued, BeforeID: list[1].ID})
	if err != nil || len(next) != 2 || next[0].ID >= list[1].ID {
		t.Errorf("second page: %+v, %v; want the 2 older queued files", next, err)
	}
	after, err := s.FilesAfter(ctx, later.ID, 10)
	maxID, _ := s.MaxFileID(ctx)
	if err != nil || len(after) != 3 || after[2].ID != maxID || after[2].ID != bad {
		t.Errorf("FilesAfter = %d files, %v; MaxFileID %d", len(after), err, maxID)
	}
	counts, err := s.FileCountsSince(ctx, "p", time.Now().Add(-time.Hour))
	if err != nil || counts[FileQueued] != 4 || counts[FileRejected] != 1 {
		t.Errorf("FileCountsSince = %v, %v", counts, err)
	}
	if counts, _ := s.FileCountsSince(ctx, "q", time.Now().Add(-time.Hour)); len(counts) != 0 {
		t.Errorf("another partner's counts = %v", counts)
	}
}

func TestHeldAndQuarantinedUploadsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	held, err := s.HoldFile(ctx, File{Partner: "p", Name: "inbox/a.csv", Size: 5, SHA256: "h"}, "still growing")
	if err != nil {
		t.Fatal(err)
	}
	if errs, _ := s.FileErrors(ctx, held, 10); len(errs) != 1 || errs[0].Error != "still growing" || errs[0].Line != 0 {
		t.Errorf("held file's errors = %+v", errs)
	}
	if err := s.ReplaceHeldFiles(ctx, "p", "inbox/a.csv"); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.File(ctx, held); f.Status != FileReplaced {
		t.Errorf("held file after a new upload = %+v", f)
	}
	q, err := s.QuarantineFile(ctx, File{Partner: "p", Name: "inbox/b.csv", SHA256: "q", ArchivePath: "quarantine/b.csv"}, "failed three times")
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := s.File(ctx, q); f.Status != FileQuarantined || f.ArchivePath != "quarantine/b.csv" || f.Error != "failed three times" {
		t.Errorf("quarantined file = %+v", f)
	}

	// The earlier queued uploads a larger one of the same name may extend.
	small, _ := queueFileJob(t, s, "p", "inbox/c.csv", "c1", 1)
	larger, _ := queueFileJob(t, s, "p", "inbox/c.csv", "c2", 2)
	queueFileJob(t, s, "p", "inbox/c.csv", "c3", 9) // not below the new size
	got, err := s.QueuedFilesNamed(ctx, "p", "inbox/c.csv", time.Now().Add(-time.Hour), 50, 10)
	if err != nil || len(got) != 2 || got[0].ID != larger.ID || got[1].ID != small.ID {
		t.Errorf("QueuedFilesNamed = %+v, %v", got, err)
	}

	received, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/d.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetReceivedFile(ctx, received); err != nil {
		t.Fatal(err)
	}
	if _, err := s.File(ctx, received); !errors.Is(err, ErrNotFound) {
		t.Errorf("forgotten file: %v", err)
	}
}

func TestIngestAttemptsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if _, err := s.IngestAttemptFor(ctx, "p", "inbox/a.csv"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no attempt yet: %v", err)
	}
	a := IngestAttempt{Partner: "p", Name: "inbox/a.csv", Size: 10, MTime: 1, Attempts: 1}
	if err := s.StartIngestAttempt(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.FailIngestAttempt(ctx, "p", "inbox/a.csv", "out of memory"); err != nil {
		t.Fatal(err)
	}
	a.Size, a.MTime, a.Attempts = 20, 2, 2 // a second attempt replaces the record
	if err := s.StartIngestAttempt(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.IngestAttemptFor(ctx, "p", "inbox/a.csv")
	if err != nil || got.Size != 20 || got.MTime != 2 || got.Attempts != 2 || got.LastError != "" || got.StartedAt.IsZero() {
		t.Fatalf("attempt = %+v, %v", got, err)
	}
	if err := s.UndoIngestAttempt(ctx, "p", "inbox/a.csv"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IngestAttemptFor(ctx, "p", "inbox/a.csv"); got.Attempts != 1 {
		t.Errorf("after undo: %+v", got)
	}
	if err := s.EndIngestAttempt(ctx, "p", "inbox/a.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IngestAttemptFor(ctx, "p", "inbox/a.csv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after end: %v", err)
	}
}

func TestTemplatesOnBothEngines(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	var saved []Template
	for _, tm := range []Template{
		{Partner: "p", Name: "otp", Channel: "sms", Body: "v1", Format: "text"},
		{Partner: "p", Name: "otp", Channel: "sms", Body: "v2", Format: "text"},
		{Partner: "p", Name: "welcome", Channel: "email", Subject: "Hi", Body: "<p>hi</p>", Format: "html", Sender: "a@b.example"},
		{Partner: "q", Name: "otp", Channel: "sms", Body: "q1", Format: "text"},
	} {
		got, err := s.SaveTemplate(ctx, tm)
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, got)
	}
	if saved[0].Version != 1 || saved[1].Version != 2 || saved[2].Version != 1 || saved[3].Version != 1 || saved[1].ID <= saved[0].ID {
		t.Fatalf("saved = %+v", saved)
	}
	if got, err := s.LatestTemplate(ctx, "p", "otp"); err != nil || got.Body != "v2" || got.ID != saved[1].ID {
		t.Errorf("LatestTemplate = %+v, %v", got, err)
	}
	if got, err := s.ListTemplates(ctx, "p"); err != nil || len(got) != 2 || got[0].Body != "v2" || got[1].Name != "welcome" {
		t.Errorf("ListTemplates = %+v, %v", got, err)
	}
	page, err := s.TemplatePage(ctx, "", "p", "otp", 10)
	if err != nil || len(page) != 2 || page[0].Name != "welcome" || page[1].Partner != "q" {
		t.Errorf("TemplatePage after p/otp = %+v, %v", page, err)
	}
	versions, err := s.TemplateVersions(ctx, "p", "otp", 0, 10)
	if err != nil || len(versions) != 2 || versions[0].Version != 2 {
		t.Errorf("TemplateVersions = %+v, %v", versions, err)
	}
	if older, err := s.TemplateVersions(ctx, "p", "otp", 2, 10); err != nil || len(older) != 1 || older[0].Body != "v1" {
		t.Errorf("TemplateVersions before 2 = %+v, %v", older, err)
	}
	if v, err := s.TemplateVersion(ctx, "p", "welcome", 1); err != nil || v.Sender != "a@b.example" || v.Subject != "Hi" {
		t.Errorf("TemplateVersion = %+v, %v", v, err)
	}
	if _, err := s.TemplateVersion(ctx, "p", "welcome", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}
}

func TestConsoleAndStatsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Now()
	cs := ConsoleSession{IDHash: "h1", Admin: true, CSRF: "c", ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateConsoleSession(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConsoleSession(ctx, ConsoleSession{IDHash: "h2", Partner: "p", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ConsoleSessionByHash(ctx, "h1", now); err != nil || !got.Admin || got.CSRF != "c" {
		t.Errorf("session = %+v, %v", got, err)
	}
	if _, err := s.ConsoleSessionByHash(ctx, "h2", now.Add(2*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session: %v", err)
	}
	if err := s.DeleteConsoleSession(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSessionByHash(ctx, "h1", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("signed-out session: %v", err)
	}
	k1, err := s.ConsoleKey(ctx)
	if err != nil || len(k1) != 32 {
		t.Fatalf("ConsoleKey = %x, %v", k1, err)
	}
	if k2, _ := s.ConsoleKey(ctx); !reflect.DeepEqual(k1, k2) {
		t.Error("the console key changed")
	}

	queueFileJob(t, s, "p", "inbox/a.csv", "a", 3)
	if _, _, err := s.CreateJob(ctx, Job{Partner: "q", Source: SourceAPI, Priority: PriorityTransactional},
		[]Message{{Channel: "email", Recipient: "a@b.example", Body: "x"}, {Channel: "sms", Recipient: "+1", Body: "y"}}); err != nil {
		t.Fatal(err)
	}
	if d, err := s.QueueDepth(ctx, ""); err != nil || d["sms"] != 4 || d["email"] != 1 {
		t.Errorf("QueueDepth = %v, %v", d, err)
	}
	if d, err := s.QueueDepth(ctx, "q"); err != nil || d["sms"] != 1 || d["email"] != 1 {
		t.Errorf("QueueDepth(q) = %v, %v", d, err)
	}
	if w, err := s.WaitingChannels(ctx); err != nil || w["sms"] != 4 || w["email"] != 1 {
		t.Errorf("WaitingChannels = %v, %v", w, err)
	}
	sc, err := s.StatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[StatusCount]bool{}
	for _, c := range sc {
		found[c] = true
	}
	for _, c := range []StatusCount{{"files", "", FileQueued, 1}, {"jobs", "", JobQueued, 2}, {"messages", "sms", MsgQueued, 4}, {"messages", "email", MsgQueued, 1}} {
		if !found[c] {
			t.Errorf("StatusCounts = %+v; want %+v among them", sc, c)
		}
	}

	minute := now.Unix() / 60
	if _, err := s.writer.Exec(`INSERT INTO channel_minutes (channel, minute, sent, failed) VALUES ('sms', ?, 5, 1), ('sms', ?, 2, 0), ('email', ?, 1, 0)`,
		minute-120, minute, minute); err != nil {
		t.Fatal(err)
	}
	cm, err := s.ChannelMinutes(ctx, []string{"sms"}, now.Add(-time.Hour))
	if err != nil || len(cm) != 1 || cm[0].Sent != 2 || cm[0].Minute.Unix() != minute*60 {
		t.Errorf("ChannelMinutes = %+v, %v", cm, err)
	}
	if err := s.PruneChannelMinutes(ctx, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if cm, _ := s.ChannelMinutes(ctx, []string{"sms", "email"}, now.Add(-3*time.Hour)); len(cm) != 2 {
		t.Errorf("after pruning: %+v", cm)
	}
}

// An ingest cut short by a crash leaves nothing queued; finished file jobs
// are listed for their reports until reported.
func TestInterruptedIngestsAndReportsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	_, done := queueFileJob(t, s, "p", "inbox/empty.csv", "e", 0)
	queueFileJob(t, s, "p", "inbox/full.csv", "f", 2) // queued, not finished
	id, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/cut.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", id, "inbox/cut.csv", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		w.Add(Message{Channel: "sms", Line: i + 2, Recipient: "+1", Body: "x"})
	}
	w.finish() // written, never committed: as a crash leaves it
	jobs, files, err := s.AbandonInterruptedIngests(ctx)
	if err != nil || jobs != 1 || files != 1 {
		t.Fatalf("AbandonInterruptedIngests = %d jobs, %d files, %v", jobs, files, err)
	}
	var n int
	s.reader.QueryRow(`SELECT COUNT(*) FROM messages WHERE job_id = ?`, w.JobID()).Scan(&n)
	if n != 0 {
		t.Errorf("%d messages of the interrupted job left", n)
	}
	rep, err := s.FinishedFileJobsToReport(ctx, 10)
	if err != nil || len(rep) != 1 || rep[0].ID != done.ID {
		t.Fatalf("FinishedFileJobsToReport = %+v, %v", rep, err)
	}
	if err := s.MarkJobReported(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	if rep, _ := s.FinishedFileJobsToReport(ctx, 10); len(rep) != 0 {
		t.Errorf("reported job still listed: %+v", rep)
	}
}
