package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// stmtCache keeps the sender's hot-path statements prepared, on the writer
// or the reader pool (database/sql prepares a pool's statement on each
// connection as it is used). Preparing a statement (parsing and compiling
// SQL) costs more than running it on a few rows; the sender runs the same
// few statements thousands of times a second. The zero value is ready to
// use.
type stmtCache struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// stmt returns q prepared on db, preparing it on first use. The lock is not
// held while preparing: that waits for a connection, which a transaction
// using the cache may hold.
func (c *stmtCache) stmt(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	if st, ok := c.lookup(db, q); ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cannot prepare statement: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[stmtKey{db, q}]; ok { // prepared meanwhile by another caller
		st.Close()
		return prev, nil
	}
	if c.m == nil {
		c.m = map[stmtKey]*sql.Stmt{}
	}
	c.m[stmtKey{db, q}] = st
	return st, nil
}

func (c *stmtCache) lookup(db *sql.DB, q string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[stmtKey{db, q}]
	return st, ok
}

// prepare makes sure each query is prepared on the writer. It must run
// outside a transaction: the writer has a single connection, which a
// transaction holds.
func (s *Store) prepare(ctx context.Context, qs ...string) error {
	for _, q := range qs {
		if _, err := s.stmts.stmt(ctx, s.writer, q); err != nil {
			return err
		}
	}
	return nil
}

// txStmt returns the writer statement for q, already prepared by prepare,
// bound to tx.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	st, ok := s.stmts.lookup(s.writer, q)
	if !ok {
		return nil, fmt.Errorf("statement used before it was prepared: %.60s", q)
	}
	return tx.StmtContext(ctx, st), nil
}

// valuesList is "(?, ?, ?), (?, ?, ?)" for n rows of width parameters.
func valuesList(n, width int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// chunkSizes splits n rows into powers of two of at most max (a power of
// two), largest first, so that multi-row statements come in a few fixed
// shapes that stay prepared.
func chunkSizes(n, max int) []int {
	var out []int
	for size := max; n > 0; size /= 2 {
		for n >= size {
			out = append(out, size)
			n -= size
		}
	}
	return out
}

// readStmt returns q prepared on the reader pool, preparing it on first
// use: the sender's per-claim reads (RunnableJobs, the claim's candidates)
// were compiled again at every claim.
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	return s.stmts.stmt(ctx, s.reader, q)
}
