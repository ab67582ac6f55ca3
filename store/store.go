// Package store holds dropgate's state in SQLite: files, jobs, messages,
// templates and delivery attempts. All SQL lives here, one method per query.
//
// The database runs in WAL mode with one writer connection (SQLite allows one
// writer at a time; a single connection turns lock contention into queueing
// in database/sql, and writerGate orders the busiest writes), a separate pool
// of readers, and a checkpointer connection that copies the WAL into the
// database off the writer's path (checkpoint.go).
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrSchemaTooNew is returned when the database was migrated by a newer
// dropgate than this binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this dropgate")

// Store is an open dropgate database.
type Store struct {
	path     string // SQLite's file; "" on PostgreSQL
	pg       bool   // PostgreSQL (dialect.go) rather than SQLite
	writer   *sql.DB
	reader   *sql.DB
	instance string        // random id of this database, prefixed to idempotency keys
	stmts    stmtCache     // prepared hot-path statements of the sender (delivery_stmts.go)
	queued   queuedHooks   // OnJobsQueued (delivery_wake.go)
	notify   pgNotify      // NOTIFY of queued jobs to other nodes (delivery_wake_pg.go)
	node     nodeSlot      // this process's node, recorded by its claims (nodes.go)
	bulk     bulkWAL       // WAL checkpointing while file jobs are written (jobwriter.go)
	ckpt     *checkpointer // WAL checkpoints off the writer's path (checkpoint.go); nil on PostgreSQL
	gate     writerGate    // urgent writes first (writergate.go)
	apiHook  apiHookSlot   // SetAPICommitHook (apisend.go)
	evRaw    rawEventStmts // a batch's event and run inserts on SQLite (events_raw.go)
	evGroups eventGroups   // concurrent AcceptEvents calls (events_group.go)
	evBurst  eventBurst    // large event groups write as a bulk job (events_burst.go)
	runKeys  runKeys       // whose runs a batch reads on SQLite (events_runkeys.go)
	claimRaw claimReaders  // the claims' candidate reads on SQLite (claim_raw.go)
	wfRaw    rawStmts      // a batch of fired runs' statements on SQLite (workflow_raw.go)
	due      rawDueHolder  // the scheduler's due-run reads on SQLite (workflow_due_raw.go)
	// templates are the newest versions read (templates_cache.go).
	templates templateCache
	// freeSpace is the data folder's free space (diskfull.go); nil: unknown.
	freeSpace func() uint64

	sup suppressionCache // the suppression list in memory for the sender (suppressions.go)
}

// Open opens (creating if needed) the database at path and applies pending
// migrations. The database and its -wal and -shm files are made readable
// by their owner only (0600), whatever the umask, since they hold
// recipients and message bodies.
func Open(ctx context.Context, path string) (*Store, error) {
	s := &Store{path: path}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	var err error
	if s.writer, err = openDB(path, true); err != nil {
		return nil, err
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	// The checkpointer copies the WAL, not the writer (checkpoint.go).
	if _, err := s.writer.ExecContext(ctx, `PRAGMA wal_autocheckpoint = `+strconv.Itoa(autoCheckpointPages)); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("cannot open database: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		return nil, err
	}
	// The writer has opened the database in WAL mode by now, so the -wal
	// and -shm files exist. SQLite gives new ones the database file's mode;
	// ones left by an older dropgate (or a crash) keep theirs unless fixed.
	if err := restrictSidecars(path); err != nil {
		s.writer.Close()
		return nil, err
	}
	if s.reader, err = openDB(path, false); err != nil {
		s.writer.Close()
		return nil, err
	}
	s.reader.SetMaxOpenConns(4)
	if s.instance, err = s.instanceID(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startCheckpointer(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenPostgres opens the PostgreSQL database named by dsn and applies
// pending migrations. Several dropgate nodes may share it.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{pg: true}
	var err error
	if s.writer, err = openPostgres(dsn); err != nil {
		return nil, err
	}
	// One writer connection per node, as on SQLite: the store's writes
	// were written for one writer at a time within a node. Nodes write
	// beside each other; what they share is guarded in SQL (claims with
	// SKIP LOCKED, unique keys, reserved id ranges).
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	if err := s.writer.PingContext(ctx); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		return nil, err
	}
	if s.reader, err = openPostgres(dsn); err != nil {
		s.writer.Close()
		return nil, err
	}
	s.reader.SetMaxOpenConns(4)
	if s.instance, err = s.instanceID(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Postgres reports whether the store is on PostgreSQL.
func (s *Store) Postgres() bool { return s.pg }

// dbFileMode is the mode of the database and its -wal and -shm files.
const dbFileMode = 0o600

// createPrivate creates the database file with dbFileMode before SQLite
// opens it (SQLite would create it 0644 less the umask) and narrows the
// mode of an existing one.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, dbFileMode)
	if err != nil {
		return fmt.Errorf("cannot create database: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(dbFileMode); err != nil {
		return fmt.Errorf("cannot make the database private: %w", err)
	}
	return nil
}

// restrictSidecars sets dbFileMode on the database's -wal and -shm files
// that exist.
func restrictSidecars(path string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+suffix, dbFileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot make the database's %s file private: %w", suffix, err)
		}
	}
	return nil
}

func openDB(path string, writer bool) (*sql.DB, error) {
	q := url.Values{}
	// cache_size 8 MB per connection: a larger cache bought no insert speed
	// and cost ~50 MB of RSS during a 1M-row ingest (ingest/BENCHMARKS.md).
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(ON)", "temp_store(MEMORY)", "cache_size(-8000)"} {
		q.Add("_pragma", p)
	}
	if writer {
		q.Set("_txlock", "immediate")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open database: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+abs+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("cannot open database: %w", err)
	}
	return db, nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	errs := []error{s.stopCheckpointer()}
	s.claimRaw.close()
	s.closeRawDue()
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers; the readiness probe uses it.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.reader.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// Instance is a random id created with the database. Idempotency keys are
// "<instance>-<message id>", unique across installations.
func (s *Store) Instance() string { return s.instance }

// MessageKey is the stable idempotency key of a message, sent to providers.
func (s *Store) MessageKey(id int64) string { return s.instance + "-" + strconv.FormatInt(id, 10) }

func (s *Store) instanceID(ctx context.Context) (string, error) {
	var id string
	err := s.writer.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'instance'`).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("cannot read instance id: %w", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	id = "dg" + hex.EncodeToString(b)
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('instance', ?)`, id); err != nil {
		return "", fmt.Errorf("cannot store instance id: %w", err)
	}
	return id, nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrationDir is where each engine's migrations are.
func migrationDir(pg bool) string {
	if pg {
		return "migrations/postgres"
	}
	return "migrations"
}

func loadMigrations() ([]migration, error) { return loadMigrationsFrom(migrationDir(false)) }

func loadMigrationsFrom(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		b, err := migrationFS.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int {
	ms, _ := loadMigrations()
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate applies, in order, each migration the database has not recorded,
// each in its own transaction. What is recorded counts, not the highest
// number: a migration merged with a lower number than one already applied
// (parallel work) is still applied. It refuses a database that has
// migrations this binary lacks.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrationsFrom(migrationDir(s.pg))
	if err != nil {
		return fmt.Errorf("cannot load migrations: %w", err)
	}
	table := `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`
	if s.pg {
		// Nodes starting together migrate one at a time.
		table = `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`
		unlock, err := s.lockMigrations(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if _, err := s.writer.ExecContext(ctx, table); err != nil {
		return fmt.Errorf("cannot create migrations table: %w", err)
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("%w: database has migration %d, this binary knows up to %d; upgrade dropgate", ErrSchemaTooNew, v, SchemaVersion())
		}
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// appliedMigrations is the set of recorded migration versions.
func (s *Store) appliedMigrations(ctx context.Context) (map[int]bool, error) {
	rows, err := s.writer.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("cannot read schema version: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// apply runs one migration in its own transaction, with foreign keys off
// as SQLite's ALTER TABLE documentation prescribes for a table rebuild
// (with them on, dropping a table that other rows reference fails, and
// the pragma is a no-op inside a transaction), and checks every foreign key
// before it commits, so a migration cannot leave a dangling reference.
func (s *Store) apply(ctx context.Context, m migration) error {
	if s.pg {
		return s.applyPostgres(ctx, m)
	}
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A migration's sorts (an index built, 0060's keys ordered) spill to
	// temporary files rather than memory, where openDB keeps them: 0060
	// held ~35 bytes a key in memory otherwise, 140 MB for two million
	// events and runs (workflow/BENCHMARKS.md, session 12).
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF; PRAGMA temp_store = FILE`); err != nil {
		return err
	}
	defer func() {
		// legacy_alter_table too, in case a migration that sets it failed.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON; PRAGMA legacy_alter_table = OFF; PRAGMA temp_store = MEMORY`); err != nil {
			// Never hand the pool a connection without foreign keys.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, ms(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// foreignKeyCheck fails, naming the first few, when rows reference rows
// that do not exist.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("cannot check foreign keys: %w", err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("cannot check foreign keys: %w", err)
		}
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s row %d references a missing %s row", table, rowid.Int64, parent))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot check foreign keys: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("foreign key check failed: %s", strings.Join(bad, "; "))
	}
	return nil
}

// ms converts a time to the Unix milliseconds stored in the database.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts stored Unix milliseconds back to a time (zero for 0).
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// nullMS reads a nullable millisecond column.
func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// ErrConflict is returned when an operation does not fit the current state
// of a row (for example resuming a job that is already done).
var ErrConflict = errors.New("conflict")
