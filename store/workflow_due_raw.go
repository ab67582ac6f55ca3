package store

import (
	"bytes"
	"errors"
	"sync"
	"unsafe"

	sqlite3 "modernc.org/sqlite/lib"
)

// On SQLite the scheduler reads its due runs on a read-only connection of
// its own, through SQLite's C API, as a list send reads its members
// (listsend_raw.go): through database/sql each of a run's eleven columns
// cost a type call, a locked value call and a fresh Go string, and
// reading a batch was a sixth of firing it (workflow/BENCHMARKS.md,
// session 8). The strings a batch's runs share (partner, workflow) are
// made once, the others from one arena per batch.

// rawDueConn is the scheduler's read-only connection with both due-run
// queries prepared. Its mutex serializes its users (the scheduler reads
// one batch at a time; tests may call DueRuns from several goroutines).
type rawDueConn struct {
	mu sync.Mutex
	rawReadConn
	first  uintptr // dueRunsSQL
	after  uintptr // dueRunsAfterSQL
	closed bool
}

// rawDueHolder is the store's due-run connection, opened on first use.
type rawDueHolder struct {
	mu sync.Mutex
	c  *rawDueConn
}

// rawDue returns the store's due-run connection, opening it on first use.
func (s *Store) rawDue() (*rawDueConn, error) {
	h := &s.due
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		return h.c, nil
	}
	c, err := openRawDueConn(s.path)
	if err != nil {
		return nil, err
	}
	h.c = c
	return c, nil
}

// closeRawDue closes the due-run connection, if it was opened (Close).
func (s *Store) closeRawDue() {
	h := &s.due
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.close()
	}
}

func openRawDueConn(path string) (*rawDueConn, error) {
	c := &rawDueConn{}
	var err error
	c.rawReadConn, err = openRawRead(path, "due runs", []string{dueRunsSQL, dueRunsAfterSQL}, []*uintptr{&c.first, &c.after})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// runs reads up to limit due runs with the first query (args: now, limit)
// or the after query (args: now, due, id, limit). The statement is reset
// at the end, which ends its read transaction.
func (c *rawDueConn) runs(after bool, limit int, args ...int64) ([]Run, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("the store is closed")
	}
	stmt := c.first
	if after {
		stmt = c.after
	}
	defer sqlite3.Xsqlite3_reset(c.tls, stmt)
	if err := c.bindInt64s(stmt, 1, args...); err != nil {
		return nil, err
	}
	out := make([]Run, 0, min(limit, 4096))
	var arena []byte
	var partner, workflow string
	for {
		if row, err := c.next(stmt, "cannot read due runs"); !row {
			if err != nil {
				return nil, err
			}
			return out, nil
		}
		r := Run{Status: RunWaiting}
		r.ID = sqlite3.Xsqlite3_column_int64(c.tls, stmt, 0)
		// A batch's runs are mostly of one partner and workflow.
		if b := c.text(stmt, 1); partner == "" || !bytesEqual(b, partner) {
			partner, arena = c.str(b, arena)
		}
		if b := c.text(stmt, 2); workflow == "" || !bytesEqual(b, workflow) {
			workflow, arena = c.str(b, arena)
		}
		r.Partner, r.Workflow = partner, workflow
		r.Contact, arena = c.str(c.text(stmt, 3), arena)
		r.Email, arena = c.str(c.text(stmt, 4), arena)
		r.Phone, arena = c.str(c.text(stmt, 5), arena)
		r.Ref, arena = c.str(c.text(stmt, 6), arena)
		r.Key, arena = c.str(c.text(stmt, 7), arena)
		var data string
		data, arena = c.str(c.text(stmt, 8), arena)
		r.Data = runData(data)
		r.Step = int(sqlite3.Xsqlite3_column_int64(c.tls, stmt, 9))
		r.DueAt = fromMS(sqlite3.Xsqlite3_column_int64(c.tls, stmt, 10))
		out = append(out, r)
	}
}

func bytesEqual(b []byte, s string) bool {
	return bytes.Equal(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

func (c *rawDueConn) text(stmt uintptr, col int32) []byte { return c.colText(stmt, col) }

// str returns b as a string made in arena.
func (c *rawDueConn) str(b []byte, arena []byte) (string, []byte) {
	return arenaString(b, arena, 32<<10)
}

func (c *rawDueConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.closeWith(&c.first, &c.after)
}
