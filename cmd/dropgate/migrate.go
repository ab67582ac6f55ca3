package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/dropgate/dropgate/store"
)

const migrateUsage = `Usage: dropgate migrate --to postgres --dsn DSN [--config FILE] [--data DIR]

Copies the SQLite database of data_dir (dropgate.db) into an empty
PostgreSQL database, in one transaction, and prints each table's row
count in both. Stop the daemon first. The PostgreSQL database must be
empty (a new database, or one whose dropgate tables hold no rows); a copy
that fails leaves it empty, so it can be run again.

The DSN is a libpq key=value string or a postgres:// URL, taken as
written (no ${VAR}); leave the password out and set PGPASSWORD instead,
as for psql. Then point the config at it: [store] driver = "postgres".

`

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", migrateUsage, stderr)
	var f serveFlags
	to := fs.String("to", "", `target engine: "postgres"`)
	dsn := fs.String("dsn", "", "PostgreSQL database to copy into (key=value or postgres:// URL)")
	fs.StringVar(&f.config, "config", "", "config file (TOML) whose data_dir holds the SQLite database")
	fs.StringVar(&f.data, "data", "", "data directory (overrides data_dir)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *to != "postgres" {
		fs.Usage()
		return &usageError{`--to postgres is required (the only engine to migrate to)`}
	}
	if *dsn == "" {
		fs.Usage()
		return &usageError{"--dsn is required"}
	}
	cfg, err := loadConfig(f, getenv)
	if err != nil {
		return err
	}
	path := cfg.DBPath()
	// Open would create an empty database: a wrong data_dir must say so.
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no SQLite database at %s: point --config or --data at the data_dir of the node to migrate", path)
		}
		return err
	}
	// A daemon still writing would make the copy a torn one.
	lock, err := lockDataDir(cfg.DataDir) // lock.go
	if err != nil {
		return err
	}
	defer lock.release()
	src, err := store.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer src.Close()
	dst, err := store.OpenPostgres(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("cannot open the PostgreSQL database: %w", err)
	}
	defer dst.Close()
	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tsqlite\tpostgres\t")
	var total int64
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", c.Table, c.Source, c.Copied)
		total += c.Copied
	}
	tw.Flush()
	fmt.Fprintf(stdout, "copied %d rows in %d tables from %s; every count matches. Set [store] driver = \"postgres\" and dsn, then start dropgate.\n",
		total, len(counts), path)
	return nil
}
