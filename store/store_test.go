package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	return openTestStore(t)
}

func TestOpenMigratesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dropgate.db")
	s, err := openTestAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	inst := s.Instance()
	s.Close()
	s, err = openTestAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Instance() != inst {
		t.Fatalf("instance changed on reopen: %s != %s", s.Instance(), inst)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dropgate.db")
	s, err := openTestAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := openTestAt(t, path); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("want ErrSchemaTooNew, got %v", err)
	}
}

// TestOpenAppliesAnUnrecordedLowerMigration: a database that has a later
// migration but not an earlier one (merged in parallel) gets the earlier
// one at the next start.
func TestOpenAppliesAnUnrecordedLowerMigration(t *testing.T) {
	skipOnPostgres(t, "SQLite's migration history (0003, 0004); PostgreSQL starts at the 0032 baseline")
	path := filepath.Join(t.TempDir(), "dropgate.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Undo 0003 (with 0004 still applied), as if it had been merged after
	// this database was migrated to 0004.
	if _, err := s.writer.Exec(`DROP INDEX messages_queue;
		CREATE INDEX messages_due ON messages (job_id, channel, next_attempt_at) WHERE status = 'queued';
		CREATE INDEX messages_job ON messages (job_id, status);
		DELETE FROM schema_migrations WHERE version = 3`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.writer.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'messages_queue'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("messages_queue index after reopen: %d, %v (0003 not applied)", n, err)
	}
}

func TestJobWriterCommitAndAbort(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	fid, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv", SHA256: "x"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fid, "inbox/a.csv", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := w.Add(Message{Partner: "p", Channel: "sms", Line: i + 2, Recipient: "+1", Body: "hi", Vars: map[string]string{"a": "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, 11, []FileError{{Line: 12, Column: "phone", Error: "bad"}}); err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, w.JobID())
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != JobQueued || j.Total != 10 || j.Counts[MsgQueued] != 10 {
		t.Fatalf("job = %+v", j)
	}
	f, _ := s.File(ctx, fid)
	if f.Status != FileQueued || f.JobID != j.ID || f.RowsBad != 1 {
		t.Fatalf("file = %+v", f)
	}
	if _, err := s.FileBySHA256(ctx, "p", "x"); err != nil {
		t.Fatalf("duplicate lookup: %v", err)
	}

	w2, _ := s.BeginFileJob(ctx, "p", fid, "inbox/b.csv", 2)
	for i := 0; i < 5; i++ {
		w2.Add(Message{Partner: "p", Channel: "sms", Recipient: "+1", Body: "x"})
	}
	if err := w2.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Job(ctx, w2.JobID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("aborted job still there: %v", err)
	}
	var n int
	s.reader.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n)
	if n != 10 {
		t.Fatalf("messages = %d, want 10", n)
	}
}

// dbModes returns the permission bits of the database and its -wal and
// -shm files.
func dbModes(t *testing.T, path string) map[string]os.FileMode {
	t.Helper()
	modes := map[string]os.FileMode{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatalf("stat %s: %v", filepath.Base(path+suffix), err)
		}
		modes[filepath.Base(path+suffix)] = fi.Mode().Perm()
	}
	return modes
}

func TestOpenMakesTheDatabaseAndItsWALPrivate(t *testing.T) {
	skipOnPostgres(t, "file modes of the database and its -wal and -shm files")
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "dropgate.db")
	s := openAt(t, path)
	if _, err := s.writer.Exec(`INSERT INTO meta (key, value) VALUES ('mode-test', 'x')`); err != nil {
		t.Fatal(err)
	}
	for name, mode := range dbModes(t, path) {
		if mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, mode)
		}
	}
}

func TestOpenNarrowsTheModesOfAnExistingDatabase(t *testing.T) {
	skipOnPostgres(t, "file modes of the database and its -wal and -shm files")
	path := filepath.Join(t.TempDir(), "dropgate.db")
	s := openAt(t, path)
	if _, err := s.writer.Exec(`INSERT INTO meta (key, value) VALUES ('mode-test', 'x')`); err != nil {
		t.Fatal(err)
	}
	// As an older dropgate left them (the -wal and -shm files in use, as
	// after a crash, so SQLite does not create them anew).
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	openAt(t, path)
	for name, mode := range dbModes(t, path) {
		if mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, mode)
		}
	}
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := openTestAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// refuseRecipient makes every later insert of a message to recipient fail
// with "refused by the test", on either engine.
func refuseRecipient(t *testing.T, s *Store, recipient string) {
	t.Helper()
	q := `CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.recipient = '` + recipient + `'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`
	if onPostgres {
		q = `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.recipient = '` + recipient + `' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
			CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()`
	}
	if _, err := s.writer.Exec(q); err != nil {
		t.Fatal(err)
	}
}
