// Package storetest opens stores for other packages' tests on the engine
// of the current run: SQLite, then PostgreSQL when DROPGATE_TEST_POSTGRES
// names a database (see Main).
package storetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
)

var onPostgres bool

// Main runs the package's tests on SQLite, then again on PostgreSQL when
// a test database is configured (required when CI=true). Call it from
// TestMain.
func Main(m *testing.M) { pgtest.Main(m, &onPostgres) }

// OnPostgres reports whether this run's stores are PostgreSQL.
func OnPostgres() bool { return onPostgres }

// Open opens an empty store for t, closed when t ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	st, err := OpenAt(t, filepath.Join(t.TempDir(), "dropgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// OpenAt opens the store at path: the SQLite file, or on PostgreSQL the
// schema standing for path (the same one each time within the run). The
// caller closes it.
func OpenAt(t testing.TB, path string) (*store.Store, error) {
	t.Helper()
	if !onPostgres {
		return store.Open(context.Background(), path)
	}
	return store.OpenPostgres(context.Background(), pgtest.SchemaFor(t, path))
}

// Configure points cfg at this run's engine: on PostgreSQL a schema of
// t's own, the one OpenAt(t, cfg.DBPath()) opens (so a test can look at
// what the daemon stored), on SQLite nothing to do.
func Configure(t testing.TB, cfg *config.Config) {
	t.Helper()
	if onPostgres {
		cfg.Store = config.StoreConfig{Driver: config.StorePostgres, DSN: pgtest.SchemaFor(t, cfg.DBPath())}
	}
}

// DSN is the PostgreSQL DSN of the schema standing for dataDir's
// database (the one TOML and Configure name); "" on SQLite.
func DSN(t testing.TB, dataDir string) string {
	t.Helper()
	if !onPostgres {
		return ""
	}
	return pgtest.SchemaFor(t, (&config.Config{DataDir: dataDir}).DBPath())
}

// TOML is the [store] section for this run's engine, for tests that write
// a config file for a daemon with data_dir dataDir; "" on SQLite.
func TOML(t testing.TB, dataDir string) string {
	t.Helper()
	if !onPostgres {
		return ""
	}
	return "\n[store]\ndriver = \"postgres\"\ndsn = " + quote(DSN(t, dataDir)) + "\n"
}

func quote(s string) string {
	b := []byte{'"'}
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}

// DB is a raw connection to a test's database, beside its store, for a
// test that writes rows no store method would (a past minute, what a
// crash leaves).
type DB struct {
	db *sql.DB
	pg bool
}

// Raw opens the database OpenAt(t, path) opens, closed when t ends.
func Raw(t testing.TB, path string) *DB {
	t.Helper()
	var db *sql.DB
	var err error
	if onPostgres {
		db, err = sql.Open("pgx", pgtest.SchemaFor(t, path))
	} else {
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &DB{db: db, pg: onPostgres}
}

// Exec runs q, whose placeholders are ? as in the store's SQL, and fails
// t on an error.
func (d *DB) Exec(t testing.TB, q string, args ...any) sql.Result {
	t.Helper()
	res, err := d.db.Exec(d.spell(q), args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// QueryRow runs q (placeholders ?) for one row.
func (d *DB) QueryRow(q string, args ...any) *sql.Row { return d.db.QueryRow(d.spell(q), args...) }

// spell numbers the placeholders for PostgreSQL (the test queries have no
// ? inside quotes).
func (d *DB) spell(q string) string {
	if !d.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// PostgresPassOnly skips t outside the PostgreSQL pass: a test that makes
// its own PostgreSQL nodes (or copies SQLite into PostgreSQL) runs once, in
// that pass, not again in the SQLite one. Main makes the pass required on
// CI.
func PostgresPassOnly(t testing.TB) {
	t.Helper()
	if !onPostgres {
		t.Skip("runs in the PostgreSQL pass (" + pgtest.EnvVar + ")")
	}
}
