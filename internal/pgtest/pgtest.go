// Package pgtest gives tests a fresh PostgreSQL schema of their own in the
// database DROPGATE_TEST_POSTGRES names, so the store's tests and the
// end-to-end tests run on PostgreSQL as they do on SQLite.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the database the tests may use (a DSN, URL or key=value).
const EnvVar = "DROPGATE_TEST_POSTGRES"

// DSN is the test database's DSN, "" when none is configured.
func DSN() string { return os.Getenv(EnvVar) }

// Missing says why PostgreSQL tests cannot run where they must: on CI
// (CI=true) the PostgreSQL runs are required, not optional. "" when they
// can run or may be skipped.
func Missing() string {
	if DSN() == "" && os.Getenv("CI") == "true" {
		return EnvVar + " is not set and CI=true: .ci/run starts a PostgreSQL cluster and sets it; the PostgreSQL runs of the store and end-to-end tests are required"
	}
	return ""
}

// Schema creates an empty schema for t in the test database and returns a
// DSN whose search_path is that schema; the schema is dropped when t ends.
// It fails t when no test database is configured.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := DSN()
	if dsn == "" {
		t.Fatalf("%s is not set", EnvVar)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	exec(t, dsn, `CREATE SCHEMA `+name)
	t.Cleanup(func() { exec(t, dsn, `DROP SCHEMA `+name+` CASCADE`) })
	return WithSearchPath(dsn, name)
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("cannot reach the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", sql, err))
	}
}

// Main runs a package's tests on SQLite (onPostgres false), then again
// on PostgreSQL (onPostgres true) when DROPGATE_TEST_POSTGRES names a
// database, and exits. On CI (CI=true) the PostgreSQL run is required.
// Benchmarks run once, on SQLite.
func Main(m *testing.M, onPostgres *bool) {
	code := m.Run()
	if b := flag.Lookup("test.bench"); b != nil && b.Value.String() != "" {
		os.Exit(code)
	}
	if why := Missing(); why != "" {
		fmt.Fprintln(os.Stderr, "FAIL:", why)
		os.Exit(1)
	}
	if DSN() != "" {
		*onPostgres = true
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	os.Exit(code)
}

// schemas maps a key (a test's database path) to its schema's DSN, so
// a test that reopens "the same database" reopens the same schema.
var schemas sync.Map

// SchemaFor is Schema, the same schema for the same key within a run.
func SchemaFor(t testing.TB, key string) string {
	t.Helper()
	if dsn, ok := schemas.Load(key); ok {
		return dsn.(string)
	}
	dsn := Schema(t)
	schemas.Store(key, dsn)
	// The schema is dropped when t ends: forget it then, so a later test
	// (the next pass) with the same key gets a schema of its own.
	t.Cleanup(func() { schemas.Delete(key) })
	return dsn
}
