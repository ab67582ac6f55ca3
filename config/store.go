package config

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// Store engines.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// StoreConfig chooses the database: SQLite in data_dir (the default, one
// node) or a PostgreSQL database that several nodes share.
type StoreConfig struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `toml:"driver"`
	// DSN is PostgreSQL's connection string (URL or key=value), with
	// ${VAR} for the password; unused on SQLite.
	DSN string `toml:"dsn"`
}

// OnPostgres reports whether the store is PostgreSQL.
func (s StoreConfig) OnPostgres() bool { return s.Driver == StorePostgres }

// validate reports problems with the [store] section through bad.
func (s StoreConfig) validate(bad func(field, format string, args ...any)) {
	switch s.Driver {
	case "", StoreSQLite:
		if strings.TrimSpace(s.DSN) != "" {
			bad("store.dsn", "is only read with driver = %q; SQLite's database is <data_dir>/dropgate.db", StorePostgres)
		}
	case StorePostgres:
		if strings.TrimSpace(s.DSN) == "" {
			bad("store.dsn", "must name the PostgreSQL database, such as \"postgres://dropgate:${PGPASSWORD}@db:5432/dropgate\"")
		} else if _, err := pgx.ParseConfig(s.DSN); err != nil {
			// pgx masks the password in its message.
			bad("store.dsn", "%v", err)
		}
	default:
		bad("store.driver", "%q is not a store driver; use %q or %q", s.Driver, StoreSQLite, StorePostgres)
	}
}
