package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// On SQLite a claim reads its candidates through SQLite's C API on a
// read-only connection of its own, as a list send reads its members
// (listsend_raw.go): through database/sql each of a candidate's fourteen
// columns cost a type call, a locked value call and a fresh Go string,
// about a dozen allocations and a few microseconds a message, as much as
// the claim's commit (sender/BENCHMARKS.md, session 8). The text columns of
// a batch are copied into one array instead. PostgreSQL keeps the reader
// pool (claim_pg.go).

// claimReaders are idle raw connections for the candidates' read: one is
// enough for each channel's dispatcher, and a claim takes one for the
// read alone.
type claimReaders struct {
	mu     sync.Mutex
	idle   []*rawClaimConn
	closed bool
}

// maxIdleClaimReaders bounds the connections kept between claims.
const maxIdleClaimReaders = 4

// take returns an idle connection, or opens one.
func (p *claimReaders) take(path string) (*rawClaimConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return openRawClaimConn(path)
}

// put keeps c for the next claim, or closes it.
func (p *claimReaders) put(c *rawClaimConn) {
	p.mu.Lock()
	if !p.closed && len(p.idle) < maxIdleClaimReaders {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// close closes the idle connections; a connection put back later is
// closed then.
func (p *claimReaders) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// rawClaimConn is a read-only SQLite connection with candidatesSQL
// prepared.
type rawClaimConn struct {
	rawReadConn
	stmt uintptr
}

func openRawClaimConn(path string) (*rawClaimConn, error) {
	c := &rawClaimConn{}
	var err error
	c.rawReadConn, err = openRawRead(path, "due messages", []string{candidatesSQL}, []*uintptr{&c.stmt})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// candidates runs candidatesSQL and appends each row to out, as scanClaim
// reads it (job_id and claimColumns), the job's fields left to the caller.
// The statement is reset at the end, which ends its read transaction.
func (c *rawClaimConn) candidates(s *Store, jobList, channel string, now, limit int64, out []Claim) ([]Claim, error) {
	defer sqlite3.Xsqlite3_reset(c.tls, c.stmt)
	if err := c.bindText(1, jobList); err != nil {
		return out, err
	}
	if err := c.bindText(2, channel); err != nil {
		return out, err
	}
	if err := c.bindInt64s(c.stmt, 3, now, limit); err != nil {
		return out, err
	}
	// Every text of the batch is made in one array, only ever appended to
	// (a new one when full, so the strings made keep their bytes).
	var arena []byte
	str := func(col int32) string {
		var s string
		s, arena = c.str(col, arena)
		return s
	}
	for {
		if row, err := c.next(c.stmt, "cannot read due messages"); !row {
			return out, err
		}
		out = append(out, Claim{})
		m := &out[len(out)-1]
		m.JobID = c.int64(0)
		m.ID = c.int64(1)
		if m.Channel = channel; string(c.text(2)) != channel { // the query's own channel, but be exact
			m.Channel = str(2)
		}
		m.Line = int(c.int64(3))
		m.Ref, m.Recipient, m.Subject, m.Body = str(4), str(5), str(6), str(7)
		m.Format = internFormat(c.text(8), str)
		m.Sender = str(9)
		if vars := c.text(10); len(vars) > 0 && string(vars) != "{}" {
			if err := json.Unmarshal(vars, &m.Vars); err != nil {
				return out, fmt.Errorf("cannot read due message: message %d: bad vars: %w", m.ID, err)
			}
		}
		m.Attempts = int(c.int64(11))
		m.ExpiresAt = fromMS(c.int64(12))
		if ageFrom := c.int64(13); ageFrom > 0 {
			m.AgeFrom = fromMS(ageFrom)
		}
		n := len(arena)
		arena = s.appendMessageKey(arena, m.ID)
		m.Key = unsafe.String(&arena[n], len(arena)-n)
	}
}

// internFormat returns a message format without a new string for the
// usual ones.
func internFormat(b []byte, str func(int32) string) string {
	switch string(b) {
	case "text":
		return "text"
	case "html":
		return "html"
	case "":
		return ""
	}
	return str(8)
}

func (c *rawClaimConn) bindText(i int32, v string) error {
	p, err := libc.CString(v)
	if err != nil {
		return err
	}
	// SQLITE_TRANSIENT (-1): SQLite copies the value before this frees it.
	rc := sqlite3.Xsqlite3_bind_text(c.tls, c.stmt, i, p, int32(len(v)), ^uintptr(0))
	libc.Xfree(c.tls, p)
	if rc != sqlite3.SQLITE_OK {
		return c.errorf("cannot bind", rc)
	}
	return nil
}

func (c *rawClaimConn) int64(col int32) int64 {
	return sqlite3.Xsqlite3_column_int64(c.tls, c.stmt, col)
}

func (c *rawClaimConn) text(col int32) []byte { return c.colText(c.stmt, col) }

// str returns a text column's value as a string made in arena.
func (c *rawClaimConn) str(col int32, arena []byte) (string, []byte) {
	return arenaString(c.text(col), arena, 16<<10)
}

func (c *rawClaimConn) close() { c.closeWith(&c.stmt) }

// appendMessageKey appends MessageKey(id) to b.
func (s *Store) appendMessageKey(b []byte, id int64) []byte {
	b = append(b, s.instance...)
	b = append(b, '-')
	return strconv.AppendInt(b, id, 10)
}
