package store

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// openAtVersion creates a database at path migrated up to version only, as
// an older dropgate left it, and returns the writer connection pool.
func openAtVersion(t *testing.T, path string, version int) *sql.DB {
	t.Helper()
	db, err := openDB(path, true)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version > version {
			break
		}
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestLeanMessagesMigrationKeepsMessagesAttemptsAndTheirJobsValues(t *testing.T) {
	skipOnPostgres(t, "SQLite's migration history (0004 to 0005); PostgreSQL starts at the 0032 baseline")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 4)
	t1 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	later := t1.Add(5 * time.Second) // a row written while its file was still being read
	retried := t1.Add(30 * time.Minute)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO jobs (id, partner, source, status, priority, total, created_at) VALUES
		(1, 'acme', 'file', 'sending', 1, 4, ?), (2, 'beta', 'api', 'queued', 0, 1, ?)`, ms(t1), ms(t2))
	type row struct {
		id, job       int64
		partner       string
		priority      int
		status        string
		created, ageF time.Time
	}
	rows := []row{
		{10, 1, "acme", 1, MsgSent, t1, time.Time{}},
		{11, 1, "acme", 1, MsgFailed, t1, time.Time{}},
		{12, 1, "acme", 1, MsgQueued, later, time.Time{}},
		{13, 1, "acme", 1, MsgQueued, t1, retried},
		{20, 2, "beta", 0, MsgSending, t2, time.Time{}},
	}
	for _, r := range rows {
		var sent any
		if r.status == MsgSent {
			sent = ms(t1.Add(time.Minute))
		}
		exec(`INSERT INTO messages (id, job_id, partner, channel, priority, line, ref, recipient, subject, body, format, sender, vars,
			status, attempts, next_attempt_at, lease_until, expires_at, provider_id, last_error, sent_at, created_at, updated_at, age_from)
			VALUES (?, ?, ?, 'sms', ?, ?, 'r', '+351912345678', '', 'hello', 'text', '', '{"a":"b"}', ?, 2, ?, ?, 0, 'p1', 'e', ?, ?, ?, ?)`,
			r.id, r.job, r.partner, r.priority, r.id, r.status, ms(r.created), ms(t2.Add(time.Hour)), sent, ms(r.created), ms(t2), msOrZero(r.ageF))
	}
	exec(`INSERT INTO attempts (message_id, attempt, at, outcome, error) VALUES
		(10, 1, ?, 'retry', 'busy'), (11, 1, ?, 'retry', 'busy'), (11, 2, ?, 'failed', 'gone')`, ms(t1), ms(t1), ms(t2))
	// A trigger on another table that reads messages, as a later migration
	// may have added before this one is applied (they are applied by what
	// is recorded): the rebuild's rename must not trip over it.
	exec(`CREATE TABLE seen (job_id INTEGER, n INTEGER);
		CREATE TRIGGER count_on_finish AFTER UPDATE OF finished_at ON jobs BEGIN
			INSERT INTO seen SELECT NEW.id, COUNT(*) FROM messages WHERE job_id = NEW.id;
		END`)

	// 0005 alone, through the runner, so later migrations do not blur
	// what it did.
	var lean migration
	migs, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		if m.version == 5 {
			lean = m
		}
	}
	if err := (&Store{writer: old}).apply(ctx, lean); err != nil {
		t.Fatalf("migrating to 0005: %v", err)
	}
	var n int
	if err := old.QueryRow(`SELECT count(*) FROM pragma_table_info('messages') WHERE name IN ('partner', 'priority', 'created_at')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("messages still has %d of partner, priority, created_at (%v)", n, err)
	}
	for name, want := range map[string]string{
		"messages_queue": `CREATE INDEX messages_queue ON messages (job_id, status, channel, next_attempt_at)`,
	} {
		var got string
		if err := old.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`, name).Scan(&got); err != nil || got != want {
			t.Errorf("index %s = %q (%v), want %q", name, got, err, want)
		}
	}
	// messages_leased is 0006's to drop; the rebuild does not bring it back
	// to a database that applied 0006 first.
	var leased int
	if err := old.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'messages_leased'`).Scan(&leased); err != nil || leased != 0 {
		t.Errorf("messages_leased after the rebuild: %d (%v)", leased, err)
	}
	var parent string
	if err := old.QueryRow(`SELECT "table" FROM pragma_foreign_key_list('attempts')`).Scan(&parent); err != nil || parent != "messages" {
		t.Errorf("attempts references %q (%v), want messages", parent, err)
	}
	var fks, legacy int
	if err := old.QueryRow(`PRAGMA foreign_keys`).Scan(&fks); err != nil || fks != 1 {
		t.Errorf("foreign keys after the migration: %d (%v), want on", fks, err)
	}
	if err := old.QueryRow(`PRAGMA legacy_alter_table`).Scan(&legacy); err != nil || legacy != 0 {
		t.Errorf("legacy_alter_table after the migration: %d (%v), want off", legacy, err)
	}
	if _, err := old.Exec(`INSERT INTO attempts (message_id, attempt, at, outcome) VALUES (999, 1, 0, 'retry')`); err == nil {
		t.Error("attempts accepted a row for a missing message: its foreign key no longer works")
	}
	exec(`UPDATE jobs SET finished_at = 1 WHERE id = 1`)
	if err := old.QueryRow(`SELECT n FROM seen WHERE job_id = 1`).Scan(&n); err != nil || n != 4 {
		t.Errorf("the trigger reading messages counted %d (%v), want 4", n, err)
	}
	exec(`UPDATE jobs SET finished_at = NULL WHERE id = 1`)
	s := migrate()

	for _, r := range rows {
		m, err := s.Message(ctx, r.id)
		if err != nil {
			t.Fatalf("message %d: %v", r.id, err)
		}
		if m.JobID != r.job || m.Partner != r.partner || m.Priority != r.priority || m.Status != r.status || m.Line != int(r.id) ||
			m.Body != "hello" || m.Vars["a"] != "b" || m.Attempts != 2 || m.ProviderID != "p1" || !m.CreatedAt.Equal(jobCreated(r.job, t1, t2)) {
			t.Errorf("message %d after the migration = %+v", r.id, m)
		}
	}
	var attempts int
	s.reader.QueryRow(`SELECT count(*) FROM attempts`).Scan(&attempts)
	if attempts != 3 {
		t.Errorf("attempts rows = %d, want 3", attempts)
	}
	if as, err := s.MessageAttempts(ctx, 11); err != nil || len(as) != 2 || as[1].Outcome != OutcomeFailed || as[1].Error != "gone" {
		t.Errorf("attempts of message 11 = %+v, %v", as, err)
	}

	// The max-age window of each message starts where it did before.
	cs, err := s.ClaimMessages(ctx, 1, "sms", t2.Add(2*time.Hour), time.Minute, 10)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claims = %+v, %v", cs, err)
	}
	for _, c := range cs {
		want := map[int64]time.Time{12: later, 13: retried}[c.ID]
		if !c.AgeFrom.Equal(want) || c.Partner != "acme" || c.Priority != PriorityBulk || !c.CreatedAt.Equal(t1) {
			t.Errorf("claim of message %d: age from %v, partner %q, priority %d, created %v; want age from %v", c.ID, c.AgeFrom, c.Partner, c.Priority, c.CreatedAt, want)
		}
	}
}

func jobCreated(job int64, t1, t2 time.Time) time.Time {
	if job == 1 {
		return t1
	}
	return t2
}

// msOrZero is ms(t), or 0 for the zero time.
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// Migrations sort on temporary files (apply), and the writer gets its
// temporary storage back in memory afterwards, as openDB set it.
func TestMigrationsLeaveTheWriterTemporaryStorageInMemory(t *testing.T) {
	skipOnPostgres(t, "SQLite's temp_store")
	s := openTestStore(t)
	var mode int
	if err := s.writer.QueryRow(`PRAGMA temp_store`).Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("temp_store = %d (%v), want 2 (memory)", mode, err)
	}
}
