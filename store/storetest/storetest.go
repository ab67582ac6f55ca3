// Package storetest opens stores for other packages' tests on the engine
// of the current run: SQLite, then PostgreSQL when DROPGATE_TEST_POSTGRES
// names a database (see Main).
package storetest

import (
	"context"
	"path/filepath"
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
// t's own (the same one for the same data_dir), on SQLite nothing to do.
func Configure(t testing.TB, cfg *config.Config) {
	t.Helper()
	if onPostgres {
		cfg.Store = config.StoreConfig{Driver: config.StorePostgres, DSN: pgtest.SchemaFor(t, cfg.DataDir)}
	}
}

// TOML is the [store] section for this run's engine, for tests that write
// a config file for a daemon with data_dir dataDir; "" on SQLite.
func TOML(t testing.TB, dataDir string) string {
	t.Helper()
	if !onPostgres {
		return ""
	}
	return "\n[store]\ndriver = \"postgres\"\ndsn = " + quote(pgtest.SchemaFor(t, dataDir)) + "\n"
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
