package config

import (
	"os"
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
	// Node names this node among those sharing the database; "" is the
	// host name. It must be stable across restarts and unique: the node's
	// delivery log is data_dir/deliveries/<node>, replayed by the node of
	// that name when it starts again.
	Node string `toml:"node"`
}

// hostname is os.Hostname, replaceable in tests.
var hostname = os.Hostname

// NodeName is this node's name: Node, else the host name.
func (s StoreConfig) NodeName() string {
	if s.Node != "" {
		return s.Node
	}
	if h, err := hostname(); err == nil && h != "" {
		return h
	}
	return "node"
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
		if s.Node != "" {
			bad("store.node", "is only read with driver = %q: SQLite serves one node", StorePostgres)
		}
	case StorePostgres:
		if s.Node != "" && !nameRe.MatchString(s.Node) {
			bad("store.node", "%q must be lowercase letters, digits, - or _ (it names a folder)", s.Node)
		}
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
