package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// TableCount is one table's rows in the SQLite database and in its copy.
type TableCount struct {
	Table          string
	Source, Copied int64
}

// CopyTo copies every table of the SQLite store s into dst, an empty
// PostgreSQL store at the same schema version (OpenPostgres has migrated
// it), for `dropgate migrate --to postgres`. The daemon must be stopped.
//
// It is one PostgreSQL transaction: the copy is whole or not at all, and
// a failed one can simply be run again. Rows go in with COPY, parents
// before children (foreign keys stay checked), with the tables' triggers
// off so that the counts SQLite's triggers kept (job_counts,
// status_totals...) are copied rather than counted twice; identity
// sequences are set past the copied ids. Each table's rows are counted on
// both sides before the commit, and a difference rolls everything back.
// meta is replaced whole: it holds the instance's id and keys, which
// links and sessions made before the move depend on.
func (s *Store) CopyTo(ctx context.Context, dst *Store) ([]TableCount, error) {
	if s.pg || !dst.pg {
		return nil, errors.New("copy goes from a SQLite store to a PostgreSQL one")
	}
	srcVer, err := schemaVersion(ctx, s.reader)
	if err != nil {
		return nil, err
	}
	dstVer, err := schemaVersion(ctx, dst.reader)
	if err != nil {
		return nil, err
	}
	if srcVer != dstVer {
		return nil, fmt.Errorf("the SQLite database is at schema version %d but PostgreSQL at %d: use the same dropgate for both", srcVer, dstVer)
	}
	conn, err := dst.writer.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var counts []TableCount
	err = pgxConn(ctx, conn, func(pc *pgx.Conn) error {
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		tables, err := pgTables(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.checkSourceTables(ctx, tables); err != nil {
			return err
		}
		for _, t := range tables {
			if t.name == "meta" {
				continue // written at open: replaced below
			}
			var n int64
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.name)).Scan(&n); err != nil {
				return fmt.Errorf("cannot count %s in PostgreSQL: %w", t.name, err)
			}
			if n > 0 {
				return fmt.Errorf("the PostgreSQL database is not empty (table %s has %d rows): migrate only into a new, empty database", t.name, n)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM meta`); err != nil {
			return fmt.Errorf("cannot empty meta: %w", err)
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+quoteIdent(t.name)+` DISABLE TRIGGER USER`); err != nil {
				return fmt.Errorf("cannot pause the triggers of %s: %w", t.name, err)
			}
		}
		for _, t := range tables {
			c, err := s.copyTable(ctx, tx, t)
			if err != nil {
				return err
			}
			counts = append(counts, c)
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+quoteIdent(t.name)+` ENABLE TRIGGER USER`); err != nil {
				return fmt.Errorf("cannot restore the triggers of %s: %w", t.name, err)
			}
			for _, col := range t.identity {
				if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX(%s), 0) + 1, false) FROM %s`,
					quoteIdent(col), quoteIdent(t.name)), t.name, col); err != nil {
					return fmt.Errorf("cannot set the ids of %s past the copied ones: %w", t.name, err)
				}
			}
		}
		for i, c := range counts {
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+quoteIdent(c.Table)).Scan(&counts[i].Copied); err != nil {
				return fmt.Errorf("cannot count %s in PostgreSQL: %w", c.Table, err)
			}
			if counts[i].Copied != c.Source {
				return fmt.Errorf("table %s: %d rows in SQLite but %d in PostgreSQL; nothing was copied", c.Table, c.Source, counts[i].Copied)
			}
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("cannot copy into PostgreSQL: %w", err)
	}
	return counts, nil
}

// pgTable is a PostgreSQL table to fill: its columns in order (with their
// types) and its identity columns.
type pgTable struct {
	name     string
	cols     []string
	types    []string
	identity []string
}

// pgTables lists the tables of dst's schema, parents before the tables
// whose foreign keys point at them, schema_migrations left out (both
// sides have their own, at the same version).
func pgTables(ctx context.Context, tx pgx.Tx) ([]pgTable, error) {
	rows, err := tx.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type, c.is_identity
		FROM information_schema.columns c JOIN information_schema.tables t
			ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("cannot list the PostgreSQL tables: %w", err)
	}
	byName := map[string]*pgTable{}
	var names []string
	for rows.Next() {
		var table, col, typ, ident string
		if err := rows.Scan(&table, &col, &typ, &ident); err != nil {
			rows.Close()
			return nil, err
		}
		t := byName[table]
		if t == nil {
			t = &pgTable{name: table}
			byName[table] = t
			names = append(names, table)
		}
		t.cols, t.types = append(t.cols, col), append(t.types, typ)
		if ident == "YES" {
			t.identity = append(t.identity, col)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	fk, err := tx.Query(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
		JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("cannot list the foreign keys: %w", err)
	}
	for fk.Next() {
		var child, parent string
		if err := fk.Scan(&child, &parent); err != nil {
			fk.Close()
			return nil, err
		}
		parents[child] = append(parents[child], parent)
	}
	fk.Close()
	if err := fk.Err(); err != nil {
		return nil, err
	}
	// Depth-first: each table after its parents, otherwise by name.
	var out []pgTable
	done := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if done[name] || byName[name] == nil {
			return
		}
		done[name] = true
		for _, p := range parents[name] {
			if p != name {
				visit(p)
			}
		}
		out = append(out, *byName[name])
	}
	for _, n := range names {
		visit(n)
	}
	return out, nil
}

// checkSourceTables fails when a SQLite table or column has no place in
// PostgreSQL: nothing may be left behind unseen.
func (s *Store) checkSourceTables(ctx context.Context, tables []pgTable) error {
	byName := map[string]pgTable{}
	for _, t := range tables {
		byName[t.name] = t
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("cannot list the SQLite tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		t, ok := byName[n]
		if !ok && sqliteOnlyTables[n] {
			continue
		}
		if !ok {
			return fmt.Errorf("SQLite table %s has no PostgreSQL counterpart", n)
		}
		cols, err := s.sqliteColumns(ctx, n)
		if err != nil {
			return err
		}
		for _, c := range cols {
			if !slices.Contains(t.cols, c) {
				return fmt.Errorf("SQLite column %s.%s has no PostgreSQL counterpart", n, c)
			}
		}
	}
	return nil
}

// sqliteOnlyTables are the SQLite tables PostgreSQL does without: the
// hash keys of SQLite's lookups (keyhash.go), made from other tables.
var sqliteOnlyTables = map[string]bool{"event_keys": true, "run_keys": true, "key_marks": true}

// sqliteColumns lists a SQLite table's declared columns.
func (s *Store) sqliteColumns(ctx context.Context, table string) ([]string, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("cannot read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// copyTable streams one SQLite table into PostgreSQL with COPY. A
// PostgreSQL rowid column (tables read in insertion order) takes SQLite's
// implicit rowid.
func (s *Store) copyTable(ctx context.Context, tx pgx.Tx, t pgTable) (TableCount, error) {
	c := TableCount{Table: t.name}
	if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.name)).Scan(&c.Source); err != nil {
		return c, fmt.Errorf("cannot count %s in SQLite: %w", t.name, err)
	}
	if c.Source == 0 {
		return c, nil
	}
	have, err := s.sqliteColumns(ctx, t.name)
	if err != nil {
		return c, err
	}
	sel := make([]string, len(t.cols))
	for i, col := range t.cols {
		switch {
		case slices.Contains(have, col):
			sel[i] = quoteIdent(col)
		case col == "rowid":
			sel[i] = "rowid"
		default:
			sel[i] = "NULL" // a column PostgreSQL has beyond SQLite's: its default is not known here
		}
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+quoteIdent(t.name))
	if err != nil {
		return c, fmt.Errorf("cannot read %s: %w", t.name, err)
	}
	defer rows.Close()
	vals := make([]any, len(t.cols))
	ptrs := make([]any, len(t.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := make([]any, len(t.cols))
	n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromFunc(func() ([]any, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			cv, err := pgValue(v, t.types[i])
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.name, t.cols[i], err)
			}
			out[i] = cv
		}
		return out, nil
	}))
	if err != nil {
		return c, fmt.Errorf("cannot copy %s: %w", t.name, err)
	}
	if n != c.Source {
		return c, fmt.Errorf("table %s: read %d rows of %d", t.name, n, c.Source)
	}
	return c, nil
}

// pgValue converts a value SQLite returned to what the PostgreSQL column
// of type typ takes.
func pgValue(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x != math.Trunc(x) {
				return nil, fmt.Errorf("%v is not a whole number", x)
			}
			return int64(x), nil
		}
	case "text", "character varying", "json", "jsonb":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64:
			return fmt.Sprint(x), nil
		}
	case "boolean":
		if x, ok := v.(int64); ok {
			return x != 0, nil
		}
	case "double precision", "real", "numeric":
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	}
	return nil, fmt.Errorf("cannot store a %T in a %s column", v, typ)
}

// schemaVersion is the newest migration a database has.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read the schema version: %w", err)
	}
	return v, nil
}

// quoteIdent quotes a table or column name for SQL.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
