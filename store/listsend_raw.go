package store

import (
	"context"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"
)

// MemberReader reads ranges of a list's subscribed members for one
// goroutine of a list send (not safe for concurrent use). Close it when
// the send is done.
type MemberReader struct {
	s    *Store
	keys MemberKeys
	raw  *rawMemberConn // nil: through the reader pool (PostgreSQL)
}

// MemberReader returns a reader of list members with the given keys. On
// SQLite it has a connection of its own, opened read-only and without
// SQLite's per-call mutexes (one goroutine uses it), and reads rows
// through SQLite's C API, as modernc.org/sqlite itself does: through
// database/sql's driver interface each column cost a type call, a
// locked value call and a fresh Go string, as much per member as
// evaluating the segment (ingest/BENCHMARKS.md). On PostgreSQL it reads
// through SubscribedMembers.
func (s *Store) MemberReader(keys MemberKeys) (*MemberReader, error) {
	r := &MemberReader{s: s, keys: keys}
	if s.pg {
		return r, nil
	}
	raw, err := openRawMemberConn(s.path, keys)
	if err != nil {
		return nil, err
	}
	r.raw = raw
	return r, nil
}

// Range is SubscribedMembers through the reader: the subscribed members
// of the list whose contact id is in [lo, hi], in contact order,
// appended to buf[:0]. ctx is checked before the read, not during it.
func (r *MemberReader) Range(ctx context.Context, listID, lo, hi int64, buf []ListMember) ([]ListMember, error) {
	if r.raw == nil {
		return r.s.SubscribedMembers(ctx, listID, lo, hi, r.keys, buf)
	}
	if err := ctx.Err(); err != nil {
		return buf[:0], err
	}
	out, err := r.raw.members(listID, lo, hi, buf)
	if err != nil {
		return out, fmt.Errorf("cannot read members of list %d: %w", listID, err)
	}
	return out, nil
}

// Close closes the reader's connection.
func (r *MemberReader) Close() {
	if r.raw != nil {
		r.raw.close()
		r.raw = nil
	}
}

// rawMemberConn is a read-only SQLite connection with the member query
// prepared.
type rawMemberConn struct {
	rawReadConn
	stmt uintptr
	keys MemberKeys
}

// memberQuery is SubscribedMembers' query for the keys asked for.
func memberQuery(keys MemberKeys) string {
	q := `SELECT c.id, c.attributes`
	for _, k := range [...]struct {
		key MemberKeys
		col string
	}{{MemberEmail, "c.email"}, {MemberPhone, "c.phone"}, {MemberRef, "c.ref"}} {
		if keys&k.key != 0 {
			q += ", " + k.col
		}
	}
	return q + ` FROM list_members m JOIN contacts c ON c.id = m.contact_id
		WHERE m.list_id = ? AND m.contact_id BETWEEN ? AND ? AND m.status = 'subscribed' ORDER BY m.contact_id`
}

func openRawMemberConn(path string, keys MemberKeys) (*rawMemberConn, error) {
	c := &rawMemberConn{keys: keys}
	var err error
	c.rawReadConn, err = openRawRead(path, "list members", []string{memberQuery(keys)}, []*uintptr{&c.stmt})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// members runs the query for one range. The statement is reset at the
// end, which ends its read transaction: each range is a short read.
func (c *rawMemberConn) members(listID, lo, hi int64, buf []ListMember) ([]ListMember, error) {
	out := buf[:0]
	// The keys' strings are made from one array per range, only ever
	// appended to (a string's bytes are never written again), instead of
	// one allocation per key and member.
	var keys []byte
	defer sqlite3.Xsqlite3_reset(c.tls, c.stmt)
	if err := c.bindInt64s(c.stmt, 1, listID, lo, hi); err != nil {
		return out, err
	}
	for {
		if row, err := c.next(c.stmt, "step"); !row {
			return out, err
		}
		var m *ListMember
		out, m = nextMember(out)
		m.ContactID = sqlite3.Xsqlite3_column_int64(c.tls, c.stmt, 0)
		m.Attributes = append(m.Attributes[:0], c.text(1)...)
		m.Email, m.Phone, m.Ref = "", "", ""
		col := int32(2)
		if c.keys&MemberEmail != 0 {
			m.Email, keys = c.key(col, keys)
			col++
		}
		if c.keys&MemberPhone != 0 {
			m.Phone, keys = c.key(col, keys)
			col++
		}
		if c.keys&MemberRef != 0 {
			m.Ref, keys = c.key(col, keys)
		}
	}
}

func (c *rawMemberConn) text(col int32) []byte { return c.colText(c.stmt, col) }

// key returns a text column's value as a string made in arena.
func (c *rawMemberConn) key(col int32, arena []byte) (string, []byte) {
	return arenaString(c.text(col), arena, 16<<10)
}

func (c *rawMemberConn) close() { c.closeWith(&c.stmt) }
