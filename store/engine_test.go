package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dropgate/dropgate/internal/pgtest"
)

// onPostgres is true during the second run of the package's tests, on
// PostgreSQL.
var onPostgres bool

// TestMain runs every test on SQLite, then again on PostgreSQL when
// DROPGATE_TEST_POSTGRES names a database (required when CI=true).
func TestMain(m *testing.M) { pgtest.Main(m, &onPostgres) }

// skipOnPostgres skips a test of something only SQLite has.
func skipOnPostgres(t testing.TB, why string) {
	t.Helper()
	if onPostgres {
		t.Skip("SQLite only: " + why)
	}
}

// openTestAt opens the test store "at path": the SQLite file, or on the
// PostgreSQL run a schema of the test's own standing for it.
func openTestAt(t testing.TB, path string) (*Store, error) {
	t.Helper()
	if !onPostgres {
		return Open(context.Background(), path)
	}
	return OpenPostgres(context.Background(), pgtest.SchemaFor(t, path))
}

func openTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := openTestAt(t, filepath.Join(t.TempDir(), "dropgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
