package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/internal/pgtest"
)

// fillForCopy writes one of each kind of thing through the store's own
// methods: a queued file job with messages, a template, an API job, a
// list with a contact, events with a workflow run, suppressions.
func fillForCopy(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	if _, err := s.SaveTemplate(ctx, Template{Partner: "acme", Name: "welcome", Channel: "sms", Format: "text", Body: "Hi {{.first_name}}", Source: "channel: sms\n---\nHi {{.first_name}}\n"}); err != nil {
		t.Fatal(err)
	}
	fileID, err := s.CreateFile(ctx, File{Partner: "acme", Name: "inbox/orders.csv", Size: 42, SHA256: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "acme", fileID, "inbox/orders.csv", 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, to := range []string{"+351912345601", "+351912345602", "+351912345603"} {
		if err := w.Add(Message{Channel: "sms", Recipient: to, Body: "Hi", Line: i + 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, 3, []FileError{{Line: 5, Column: "phone", Value: "x", Error: "not a phone number"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.CreateAPIJob(ctx, APIRequest{Partner: "acme", Key: "req-1", RequestHash: "h1"},
		[]Message{{Channel: "sms", Recipient: "+351912345609", Body: "API"}}); err != nil {
		t.Fatal(err)
	}
	list, err := s.EnsureList(ctx, "acme", "vip")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutContact(ctx, list, ContactInput{Email: "ana@example.com", Attributes: map[string]any{"first_name": "Ana"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcceptEvents(ctx, []EventWrite{{Event: Event{Partner: "acme", EventID: "e1", Name: "cart_abandoned", Email: "ana@example.com", Key: "c1", Source: EventFromAPI},
		Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSuppressions(ctx, []Suppression{{Partner: "acme", Channel: "email", Recipient: "bob@example.com", Reason: "asked", Source: "api"}}); err != nil {
		t.Fatal(err)
	}
}

// readForCopy reads back what fillForCopy wrote, through store methods,
// as one text to compare between the engines.
func readForCopy(t *testing.T, s *Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	tmpl, err := s.LatestTemplate(ctx, "acme", "welcome")
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	b.WriteString("template " + tmpl.Name + " " + tmpl.Body + "\n")
	files, err := s.ListFiles(ctx, FileFilter{Partner: "acme"})
	if err != nil {
		t.Fatalf("files: %v", err)
	}
	for _, f := range files {
		b.WriteString("file " + f.Name + " " + f.Status + " " + f.SHA256 + "\n")
	}
	jobs, err := s.ListJobs(ctx, JobFilter{Partner: "acme"})
	if err != nil {
		t.Fatalf("jobs: %v", err)
	}
	for _, j := range jobs {
		b.WriteString("job " + j.Source + " " + j.Status + " " + j.FileName + "\n")
		if err := s.JobMessages(ctx, j.ID, "", 0, 0, func(m Message) error {
			b.WriteString("  message " + m.Recipient + " " + m.Body + " " + m.Status + "\n")
			return nil
		}); err != nil {
			t.Fatalf("messages: %v", err)
		}
	}
	lists, err := s.Lists(ctx, "acme")
	if err != nil {
		t.Fatalf("lists: %v", err)
	}
	for _, l := range lists {
		b.WriteString("list " + l.Name + "\n")
	}
	c, err := s.FindContact(ctx, "acme", "ana@example.com", "", "")
	if err != nil {
		t.Fatalf("contact: %v", err)
	}
	b.WriteString("contact " + c.Email + "\n")
	runs, err := s.ListRuns(ctx, RunFilter{Partner: "acme"})
	if err != nil {
		t.Fatalf("runs: %v", err)
	}
	for _, r := range runs {
		b.WriteString("run " + r.Workflow + " " + r.Status + " " + r.Key + "\n")
	}
	sups, err := s.SuppressionPage(ctx, "acme", "", "", 0, 10)
	if err != nil {
		t.Fatalf("suppressions: %v", err)
	}
	for _, x := range sups {
		b.WriteString("suppression " + x.Recipient + " " + x.Reason + "\n")
	}
	return b.String()
}

// A SQLite database filled through the store is copied into PostgreSQL;
// the PostgreSQL store reads back the same things, and new rows get new
// ids past the copied ones.
func TestCopySQLiteToPostgresRoundTrip(t *testing.T) {
	if !onPostgres {
		t.Skip("copies into PostgreSQL: runs in the package's PostgreSQL run")
	}
	ctx := context.Background()
	src, err := Open(ctx, filepath.Join(t.TempDir(), "dropgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fillForCopy(t, src)
	want := readForCopy(t, src)

	dst, err := OpenPostgres(ctx, pgtest.SchemaFor(t, "copy-target"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	copied := map[string]int64{}
	for _, c := range counts {
		copied[c.Table] = c.Copied
	}
	for table, n := range map[string]int64{"messages": 4, "jobs": 2, "files": 1, "file_errors": 1, "templates": 1, "contacts": 1,
		"lists": 1, "events": 1, "workflow_runs": 1, "suppressions": 1, "meta": 1} {
		if copied[table] < n {
			t.Errorf("table %s: %d rows copied, want at least %d", table, copied[table], n)
		}
	}
	if got := readForCopy(t, dst); got != want {
		t.Fatalf("PostgreSQL reads back:\n%s\nSQLite had:\n%s", got, want)
	}
	var srcInstance, dstInstance string
	src.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'instance'`).Scan(&srcInstance)
	dst.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'instance'`).Scan(&dstInstance)
	if srcInstance == "" || srcInstance != dstInstance {
		t.Errorf("instance id %q became %q", srcInstance, dstInstance)
	}
	// The sequences are past the copied ids: a new file gets a new id.
	id, err := dst.CreateFile(ctx, File{Partner: "acme", Name: "inbox/next.csv"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mustFiles(t, src) {
		if f.ID >= id {
			t.Fatalf("new file id %d not past the copied %d", id, f.ID)
		}
	}
	// A second copy finds the database in use and refuses.
	if _, err := src.CopyTo(ctx, dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second copy: %v, want a refusal of a non-empty database", err)
	}
}

func mustFiles(t *testing.T, s *Store) []File {
	t.Helper()
	fs, err := s.ListFiles(context.Background(), FileFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}
