package store

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// A list load's writes on SQLite go through SQLite's C API (modernc's
// lib, the library the driver itself calls) on the writer connection the
// load holds, instead of the driver's Stmt.ExecContext: the driver copies
// every string parameter into a fresh C allocation and frees it after
// the statement, and walks its own per-call machinery (argument lists,
// the connection's lock, the result), which was an eighth of the writer
// goroutine's time (ingest/BENCHMARKS.md, "Session 8, listup2"). Here a
// statement's strings are copied once into one C buffer kept for the
// load, and bound in place (SQLITE_STATIC).
//
// The connection's handle is not exported by modernc.org/sqlite: rawConnOf
// reads it from the driver's connection by its field names and types, and
// gives up (the load then writes through the driver, as before) if they
// are not there. TestListLoadWritesThroughTheCAPI fails if that happens,
// so a driver upgrade that moves them is seen.

// rawConn is the driver connection's SQLite handle and the thread state
// the driver calls it with.
type rawConn struct {
	db  uintptr
	tls *libc.TLS
}

// rawConnOf returns dc's handle, if dc is modernc.org/sqlite's
// connection as this code knows it.
func rawConnOf(dc any) (rawConn, bool) {
	v := reflect.ValueOf(dc)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return rawConn{}, false
	}
	e := v.Elem()
	if e.Type().PkgPath() != "modernc.org/sqlite" || e.Type().Name() != "conn" {
		return rawConn{}, false
	}
	db, tls := e.FieldByName("db"), e.FieldByName("tls")
	if !db.IsValid() || db.Kind() != reflect.Uintptr || !tls.IsValid() || tls.Type() != reflect.TypeFor[*libc.TLS]() {
		return rawConn{}, false
	}
	rc := rawConn{db: uintptr(db.Uint()), tls: (*libc.TLS)(tls.UnsafePointer())}
	if rc.db == 0 || rc.tls == nil {
		return rawConn{}, false
	}
	return rc, true
}

// rawWriter runs a load's statements through the C API. Only used inside
// the load's conn.Raw, which holds the connection.
type rawWriter struct {
	c     rawConn
	stmts map[string]uintptr
	buf   uintptr // C memory for one statement's strings
	cap   int
}

// rawResult is a write's outcome as database/sql/driver has it.
type rawResult struct{ last, n int64 }

func (r rawResult) LastInsertId() (int64, error) { return r.last, nil }
func (r rawResult) RowsAffected() (int64, error) { return r.n, nil }

// exec runs q with args (nil, int64 or string) and returns its result.
func (w *rawWriter) exec(q string, args []any) (rawResult, error) {
	tls := w.c.tls
	st, ok := w.stmts[q]
	if !ok {
		zq, err := libc.CString(q)
		if err != nil {
			return rawResult{}, err
		}
		pp := tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
		rc := sqlite3.Xsqlite3_prepare_v3(tls, w.c.db, zq, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, pp, 0)
		st = *(*uintptr)(ptr(pp))
		tls.Free(int(unsafe.Sizeof(uintptr(0))))
		libc.Xfree(tls, zq)
		if rc != sqlite3.SQLITE_OK {
			return rawResult{}, w.errorf("cannot prepare list load statement", rc)
		}
		if w.stmts == nil {
			w.stmts = map[string]uintptr{}
		}
		w.stmts[q] = st
	}
	need := 0
	for _, a := range args {
		if s, ok := a.(string); ok {
			need += len(s)
		}
	}
	if need > w.cap {
		if w.buf != 0 {
			libc.Xfree(tls, w.buf)
		}
		w.cap = max(need, 2*w.cap, 64<<10)
		if w.buf = libc.Xmalloc(tls, uint64(w.cap)); w.buf == 0 {
			w.cap = 0
			return rawResult{}, errors.New("cannot bind list load values: out of memory")
		}
	}
	buf := unsafe.Slice((*byte)(ptr(w.buf)), w.cap)
	off := 0
	for i, a := range args {
		var rc int32
		switch v := a.(type) {
		case nil:
			rc = sqlite3.Xsqlite3_bind_null(tls, st, int32(i+1))
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(tls, st, int32(i+1), v)
		case string:
			copy(buf[off:], v)
			// SQLITE_STATIC (0): the buffer is left alone until the
			// statement is reset.
			rc = sqlite3.Xsqlite3_bind_text(tls, st, int32(i+1), w.buf+uintptr(off), int32(len(v)), 0)
			off += len(v)
		default:
			return rawResult{}, fmt.Errorf("list load: a %T parameter", a)
		}
		if rc != sqlite3.SQLITE_OK {
			return rawResult{}, w.errorf("cannot bind list load values", rc)
		}
	}
	if rc := sqlite3.Xsqlite3_step(tls, st); rc != sqlite3.SQLITE_DONE {
		err := w.errorf("list load", rc)
		sqlite3.Xsqlite3_reset(tls, st)
		return rawResult{}, err
	}
	sqlite3.Xsqlite3_reset(tls, st)
	return rawResult{
		last: sqlite3.Xsqlite3_last_insert_rowid(tls, w.c.db),
		n:    sqlite3.Xsqlite3_changes64(tls, w.c.db),
	}, nil
}

func (w *rawWriter) errorf(what string, rc int32) error {
	return fmt.Errorf("%s: %s (%d)", what, libc.GoString(sqlite3.Xsqlite3_errmsg(w.c.tls, w.c.db)), rc)
}

// close finalizes the statements and frees the buffer.
func (w *rawWriter) close() {
	for _, st := range w.stmts {
		sqlite3.Xsqlite3_finalize(w.c.tls, st)
	}
	w.stmts = nil
	if w.buf != 0 {
		libc.Xfree(w.c.tls, w.buf)
		w.buf, w.cap = 0, 0
	}
}
