package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The store's SQL is written once, in the subset SQLite and PostgreSQL
// share (ON CONFLICT, RETURNING, COALESCE, CAST ... AS BIGINT). What
// differs only in spelling is translated for PostgreSQL below, at the
// driver, so each query stays one string that both engines run:
//
//   - placeholders: `?` and `?N` become `$N`;
//   - `INDEXED BY name` (a SQLite planner hint) is dropped;
//   - `json_each(?)`, which lists a JSON array's values, becomes
//     `json_array_elements_text($N::json)`; its values are text, so a
//     query comparing them with integers casts them (CAST(value AS BIGINT)).
//
// What differs in meaning (bulk writes, id reservation, claims across
// nodes, WAL upkeep) is written per engine and chosen with Store.pg.

var (
	indexedBy = regexp.MustCompile(`\s+INDEXED BY\s+[A-Za-z_][A-Za-z0-9_]*`)
	jsonEach  = regexp.MustCompile(`json_each\((\$[0-9]+)\)`)
)

// postgresSQL translates a query from the shared spelling to PostgreSQL's.
func postgresSQL(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch c {
		case '\'', '"':
			// Copy a quoted string or identifier whole: a ? inside is text.
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				b.WriteString(q[i:])
				i = len(q)
				continue
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j > i+1 {
				b.WriteByte('$')
				b.WriteString(q[i+1 : j])
				i = j - 1
				continue
			}
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	out := indexedBy.ReplaceAllString(b.String(), "")
	return jsonEach.ReplaceAllString(out, "json_array_elements_text($1::json)")
}

// translated caches postgresSQL's answers: the store's queries are a
// fixed set (bulk statements vary only in their row count).
var translated sync.Map

func toPostgres(q string) string {
	if v, ok := translated.Load(q); ok {
		return v.(string)
	}
	out := postgresSQL(q)
	translated.Store(q, out)
	return out
}

// translatingConnector opens pgx connections that translate each query.
type translatingConnector struct{ driver.Connector }

func (c translatingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &translatingConn{Conn: conn.(*stdlib.Conn)}, nil
}

// translatingConn is a pgx database/sql connection whose queries are
// translated first. Embedding keeps pgx's other driver interfaces
// (transactions, named value checks, session reset).
type translatingConn struct{ *stdlib.Conn }

func (c *translatingConn) Prepare(q string) (driver.Stmt, error) {
	return c.Conn.Prepare(toPostgres(q))
}

func (c *translatingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, toPostgres(q))
}

func (c *translatingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, toPostgres(q), args)
}

func (c *translatingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, toPostgres(q), args)
}

// openPostgres opens a pool on dsn whose queries are translated.
func openPostgres(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the PostgreSQL dsn: %w", err)
	}
	return sql.OpenDB(translatingConnector{stdlib.GetConnector(*cfg)}), nil
}

// pgxConn runs f with the pgx connection under a database/sql connection,
// for what database/sql cannot say (COPY, LISTEN).
func pgxConn(ctx context.Context, conn *sql.Conn, f func(*pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		tc, ok := dc.(*translatingConn)
		if !ok {
			return fmt.Errorf("not a PostgreSQL connection")
		}
		return f(tc.Conn.Conn())
	})
}

// schemaLockKey is the key of an advisory lock named by its parameter.
// Advisory locks are the database's, not a schema's: the key hashes the
// store's schema too, so that dropgates kept in other schemas of one
// database (and the tests, a schema each, run side by side) do not wait on
// each other's locks, as queueChannel keeps their notifications apart.
const schemaLockKey = `hashtext(COALESCE(current_schema(), '') || ' ' || ?)`

// reserveIDs reserves n consecutive ids of table's identity column on
// PostgreSQL and returns the first. It holds a transaction-scoped lock on
// the table's sequence until tx ends, so every insert into a table whose
// ids are reserved this way must reserve them too (a plain default insert
// could take an id between the lock and setval).
func reserveIDs(ctx context.Context, tx *sql.Tx, table string, n int) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+schemaLockKey+`)`, table+".id"); err != nil {
		return 0, fmt.Errorf("cannot lock %s ids: %w", table, err)
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), nextval(pg_get_serial_sequence(?, 'id')) + ? - 1)`,
		table, table, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("cannot reserve %s ids: %w", table, err)
	}
	return last - int64(n) + 1, nil
}

// lockMigrations takes a session lock that serialises migrations across
// nodes starting at once; unlock releases it. The writer pool has one
// connection, so the lock's session is the one that migrates.
func (s *Store) lockMigrations(ctx context.Context) (unlock func(), err error) {
	const key = `SELECT hashtext(COALESCE(current_schema(), '') || ' dropgate schema_migrations')` // schemaLockKey
	if _, err := s.writer.ExecContext(ctx, `SELECT pg_advisory_lock((`+key+`))`); err != nil {
		return nil, fmt.Errorf("cannot lock migrations: %w", err)
	}
	return func() {
		s.writer.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock((`+key+`))`)
	}, nil
}

// applyPostgres runs one migration in its own transaction; PostgreSQL
// checks foreign keys itself and runs DDL inside transactions.
func (s *Store) applyPostgres(ctx context.Context, m migration) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, ms(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}
