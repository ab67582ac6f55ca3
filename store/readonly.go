package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrNoDatabase is returned by OpenReadOnly when there is no database yet.
var ErrNoDatabase = errors.New("no database yet")

// OpenReadOnly opens an existing SQLite database for reading only, without
// migrating it: for commands that inspect the state of a daemon that may
// be running (check-config). Writes through it fail.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoDatabase, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open database: %w", err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+abs+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("cannot open database: %w", err)
	}
	return readOnly(ctx, &Store{path: path}, db)
}

// OpenPostgresReadOnly is OpenReadOnly for a PostgreSQL database: its
// sessions are read-only, and nothing is migrated.
func OpenPostgresReadOnly(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the PostgreSQL dsn: %w", err)
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	return readOnly(ctx, &Store{pg: true}, sql.OpenDB(translatingConnector{stdlib.GetConnector(*cfg)}))
}

// readOnly finishes opening s on db, refusing a database of a newer
// dropgate (its tables may mean something else) or none at all.
func readOnly(ctx context.Context, s *Store, db *sql.DB) (*Store, error) {
	s.reader, s.writer = db, db
	// A database nothing was migrated into (an empty file or schema) has
	// no migrations table: there is nothing to read yet.
	tables := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if s.pg {
		tables = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`
	}
	var n int
	if err := db.QueryRowContext(ctx, tables).Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot read the database: %w", err)
	}
	if n == 0 {
		db.Close()
		return nil, ErrNoDatabase
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if len(applied) == 0 {
		db.Close()
		return nil, ErrNoDatabase
	}
	ms, err := loadMigrationsFrom(migrationDir(s.pg))
	if err != nil {
		db.Close()
		return nil, err
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			db.Close()
			return nil, fmt.Errorf("%w: database has migration %d", ErrSchemaTooNew, v)
		}
	}
	return s, nil
}
