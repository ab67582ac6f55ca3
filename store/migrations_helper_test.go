package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// openAtMigration creates a SQLite database migrated up to migration n
// only (openAtVersion) and returns its writer pool, for the test's rows of
// the old shape, and migrate, which closes that pool and opens the
// database as a Store, applying every later migration. The Store is closed
// when the test ends. SQLite only: the test skips PostgreSQL first, since
// PostgreSQL has no history before its 0032 baseline.
func openAtMigration(t *testing.T, n int) (old *sql.DB, migrate func() *Store) {
	t.Helper()
	if onPostgres {
		t.Fatal("openAtMigration builds a SQLite database: skipOnPostgres first")
	}
	path := filepath.Join(t.TempDir(), "dropgate.db")
	old = openAtVersion(t, path, n)
	return old, func() *Store {
		t.Helper()
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("migrating from %d: %v", n, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// execOld runs each statement on db, failing the test with the statement
// that failed: the rows an older version wrote.
func execOld(t *testing.T, db *sql.DB, statements ...string) {
	t.Helper()
	for _, q := range statements {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
