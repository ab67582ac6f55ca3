package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
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
	mu     sync.Mutex
	tls    *libc.TLS
	db     uintptr
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

func openRawDueConn(path string) (_ *rawDueConn, err error) {
	c := &rawDueConn{tls: libc.NewTLS()}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	name, err := libc.CString(path)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, name)
	pp := c.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	defer c.tls.Free(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, pp, sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = *(*uintptr)(ptr(pp))
	if rc != sqlite3.SQLITE_OK {
		return nil, c.errorf("cannot open the database to read due runs", rc)
	}
	// The pool's readers wait as long for a lock (store.go).
	sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, 10000)
	for _, q := range [...]struct {
		sql  string
		stmt *uintptr
	}{{dueRunsSQL, &c.first}, {dueRunsAfterSQL, &c.after}} {
		cq, err := libc.CString(q.sql)
		if err != nil {
			return nil, err
		}
		rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, cq, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, pp, 0)
		libc.Xfree(c.tls, cq)
		if rc != sqlite3.SQLITE_OK {
			return nil, c.errorf("cannot prepare the read of due runs", rc)
		}
		*q.stmt = *(*uintptr)(ptr(pp))
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
	for i, v := range args {
		if rc := sqlite3.Xsqlite3_bind_int64(c.tls, stmt, int32(i+1), v); rc != sqlite3.SQLITE_OK {
			return nil, c.errorf("cannot bind", rc)
		}
	}
	out := make([]Run, 0, min(limit, 4096))
	var arena []byte
	var partner, workflow string
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, stmt); rc {
		case sqlite3.SQLITE_DONE:
			return out, nil
		case sqlite3.SQLITE_ROW:
		default:
			return nil, c.errorf("cannot read due runs", rc)
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

// text is a column's value as text (nil for NULL), in SQLite's memory:
// valid until the next step.
func (c *rawDueConn) text(stmt uintptr, col int32) []byte {
	p := sqlite3.Xsqlite3_column_text(c.tls, stmt, col)
	if p == 0 {
		return nil
	}
	n := sqlite3.Xsqlite3_column_bytes(c.tls, stmt, col)
	return unsafe.Slice((*byte)(ptr(p)), n)
}

// str returns b as a string made in arena (which it returns, appended to;
// a new array when it is full, so that the strings already made keep
// theirs unchanged).
func (c *rawDueConn) str(b []byte, arena []byte) (string, []byte) {
	if len(b) == 0 {
		return "", arena
	}
	if cap(arena)-len(arena) < len(b) {
		arena = make([]byte, 0, max(32<<10, len(b)))
	}
	n := len(arena)
	arena = append(arena, b...)
	return unsafe.String(&arena[n], len(b)), arena
}

func (c *rawDueConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, st := range [...]uintptr{c.first, c.after} {
		if st != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, st)
		}
	}
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
	}
	c.tls.Close()
}

func (c *rawDueConn) errorf(what string, rc int32) error {
	msg := "out of memory"
	if c.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return fmt.Errorf("%s: %s (%d)", what, msg, rc)
}
