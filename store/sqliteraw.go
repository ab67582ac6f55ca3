package store

import (
	"fmt"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// rawReadConn is a read-only SQLite connection used through SQLite's C API
// (modernc's lib, which the driver itself calls), by one goroutine at a
// time. The hot reads use one where database/sql's per-column type and
// value calls and a fresh Go string per column cost as much as the work:
// a list send's members (listsend_raw.go), a claim's candidates
// (claim_raw.go) and the scheduler's due runs (workflow_due_raw.go). Each
// is tested against its database/sql read; they need a look at every
// modernc.org/sqlite upgrade.
type rawReadConn struct {
	tls *libc.TLS
	db  uintptr
}

// openRawRead opens path read-only, without SQLite's per-call mutexes, and
// prepares each query into its stmts slot; what names the read in errors.
func openRawRead(path, what string, queries []string, stmts []*uintptr) (_ rawReadConn, err error) {
	c := rawReadConn{tls: libc.NewTLS()}
	defer func() {
		if err != nil {
			c.closeWith(stmts...)
		}
	}()
	name, err := libc.CString(path)
	if err != nil {
		return c, err
	}
	defer libc.Xfree(c.tls, name)
	pp := c.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	defer c.tls.Free(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, pp, sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = *(*uintptr)(ptr(pp))
	if rc != sqlite3.SQLITE_OK {
		return c, c.errorf("cannot open the database to read "+what, rc)
	}
	// The pool's readers wait as long for a lock (store.go).
	sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, 10000)
	for i, q := range queries {
		cq, err := libc.CString(q)
		if err != nil {
			return c, err
		}
		rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, cq, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, pp, 0)
		libc.Xfree(c.tls, cq)
		if rc != sqlite3.SQLITE_OK {
			return c, c.errorf("cannot prepare the read of "+what, rc)
		}
		*stmts[i] = *(*uintptr)(ptr(pp))
	}
	return c, nil
}

// bindInt64s binds vs to stmt's parameters, the first to parameter first.
func (c *rawReadConn) bindInt64s(stmt uintptr, first int32, vs ...int64) error {
	for i, v := range vs {
		if rc := sqlite3.Xsqlite3_bind_int64(c.tls, stmt, first+int32(i), v); rc != sqlite3.SQLITE_OK {
			return c.errorf("cannot bind", rc)
		}
	}
	return nil
}

// next steps stmt: true on a row, false once the rows are done, or the
// error of a failed step, named by what.
func (c *rawReadConn) next(stmt uintptr, what string) (bool, error) {
	switch rc := sqlite3.Xsqlite3_step(c.tls, stmt); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		return false, nil
	default:
		return false, c.errorf(what, rc)
	}
}

// colText is a column's value as text (nil for NULL), in SQLite's memory:
// valid until the next step.
func (c *rawReadConn) colText(stmt uintptr, col int32) []byte {
	p := sqlite3.Xsqlite3_column_text(c.tls, stmt, col)
	if p == 0 {
		return nil
	}
	n := sqlite3.Xsqlite3_column_bytes(c.tls, stmt, col)
	return unsafe.Slice((*byte)(ptr(p)), n)
}

// arenaString returns b as a string made in arena (which it returns,
// appended to; a new array of at least chunk bytes when it is full, so
// that the strings already made keep their bytes): one allocation for
// many short strings.
func arenaString(b, arena []byte, chunk int) (string, []byte) {
	if len(b) == 0 {
		return "", arena
	}
	if cap(arena)-len(arena) < len(b) {
		arena = make([]byte, 0, max(chunk, len(b)))
	}
	n := len(arena)
	arena = append(arena, b...)
	return unsafe.String(&arena[n], len(b)), arena
}

func (c *rawReadConn) errorf(what string, rc int32) error {
	msg := "out of memory"
	if c.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return fmt.Errorf("%s: %s (%d)", what, msg, rc)
}

// closeWith finalizes the statements and closes the connection; it may be
// called again.
func (c *rawReadConn) closeWith(stmts ...*uintptr) {
	for _, st := range stmts {
		if *st != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, *st)
			*st = 0
		}
	}
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	if c.tls != nil {
		c.tls.Close()
		c.tls = nil
	}
}

// ptr is the address of memory SQLite allocated (outside Go's heap), as
// a pointer.
func ptr(p uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}
