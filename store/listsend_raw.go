package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"

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
	stmt                            uintptr // memberQuery
	ranges, contacts, begin, commit uintptr
	keys                            MemberKeys
}

// memberColumns is the contact columns a read of members returns for the
// keys asked for.
func memberColumns(keys MemberKeys) string {
	q := `c.id, c.attributes`
	for _, k := range [...]struct {
		key MemberKeys
		col string
	}{{MemberEmail, "c.email"}, {MemberPhone, "c.phone"}, {MemberRef, "c.ref"}} {
		if keys&k.key != 0 {
			q += ", " + k.col
		}
	}
	return q
}

// memberQuery reads the subscribed members stored as rows (list ?, ids
// in [?, ?]).
func memberQuery(keys MemberKeys) string {
	return `SELECT ` + memberColumns(keys) + ` FROM list_members m JOIN contacts c ON c.id = m.contact_id
		WHERE m.list_id = ? AND m.contact_id BETWEEN ? AND ? AND m.status = 'subscribed' ORDER BY m.contact_id`
}

// memberQueryBoth is SubscribedMembers' query: the subscribed members
// stored as rows and as member ranges (lists_ranges.go) of list ?1 with
// ids in [?2, ?3], in id order, in one statement.
func memberQueryBoth(keys MemberKeys) string {
	cols := memberColumns(keys)
	return `SELECT ` + cols + ` FROM list_members m JOIN contacts c ON c.id = m.contact_id
		WHERE m.list_id = ?1 AND m.contact_id BETWEEN ?2 AND ?3 AND m.status = 'subscribed'
		UNION ALL
		SELECT ` + cols + ` FROM list_member_ranges r JOIN contacts c ON c.id BETWEEN r.lo AND r.hi
		WHERE r.list_id = ?1 AND r.status = 'subscribed' AND r.hi >= ?2 AND r.lo <= ?3 AND c.id BETWEEN ?2 AND ?3
		ORDER BY 1`
}

// The raw reader's statements besides memberQuery: a read is one
// transaction, so that a member moved from a range to a row of its own
// while the range is read is read once.
const (
	memberRangesQuery = `SELECT lo, hi FROM list_member_ranges WHERE list_id = ?1 AND status = 'subscribed'
		AND lo BETWEEN coalesce((SELECT max(lo) FROM list_member_ranges WHERE list_id = ?1 AND lo <= ?2), ?2) AND ?3
		ORDER BY lo`
	rangeContactsQuery = `SELECT %s FROM contacts c WHERE c.id BETWEEN ? AND ? ORDER BY c.id`
)

func openRawMemberConn(path string, keys MemberKeys) (*rawMemberConn, error) {
	c := &rawMemberConn{keys: keys}
	var err error
	c.rawReadConn, err = openRawRead(path, "list members",
		[]string{memberQuery(keys), memberRangesQuery, fmt.Sprintf(rangeContactsQuery, memberColumns(keys)), "BEGIN", "COMMIT"},
		[]*uintptr{&c.stmt, &c.ranges, &c.contacts, &c.begin, &c.commit})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// members runs the queries for one range, in one read transaction, which
// ends with it: each range is a short read. The members stored as rows
// come first; those of member ranges are appended and, when there were
// both, the whole sorted by id.
func (c *rawMemberConn) members(listID, lo, hi int64, buf []ListMember) ([]ListMember, error) {
	out := buf[:0]
	// The keys' strings are made from one array per range, only ever
	// appended to (a string's bytes are never written again), instead of
	// one allocation per key and member.
	var keys []byte
	if _, err := c.next(c.begin, "begin"); err != nil {
		sqlite3.Xsqlite3_reset(c.tls, c.begin)
		return out, err
	}
	sqlite3.Xsqlite3_reset(c.tls, c.begin)
	defer func() {
		c.next(c.commit, "commit")
		sqlite3.Xsqlite3_reset(c.tls, c.commit)
	}()
	var err error
	if out, keys, err = c.read(c.stmt, out, keys, listID, lo, hi); err != nil {
		return out, err
	}
	rows := len(out)
	var spans [][2]int64
	err = func() error {
		defer sqlite3.Xsqlite3_reset(c.tls, c.ranges)
		if err := c.bindInt64s(c.ranges, 1, listID, lo, hi); err != nil {
			return err
		}
		for {
			row, err := c.next(c.ranges, "step")
			if !row {
				return err
			}
			rlo, rhi := sqlite3.Xsqlite3_column_int64(c.tls, c.ranges, 0), sqlite3.Xsqlite3_column_int64(c.tls, c.ranges, 1)
			if rhi >= lo {
				spans = append(spans, [2]int64{max(rlo, lo), min(rhi, hi)})
			}
		}
	}()
	if err != nil {
		return out, err
	}
	for _, sp := range spans {
		if out, keys, err = c.read(c.contacts, out, keys, sp[0], sp[1]); err != nil {
			return out, err
		}
	}
	if rows > 0 && len(out) > rows {
		slices.SortFunc(out, func(a, b ListMember) int { return cmp.Compare(a.ContactID, b.ContactID) })
	}
	return out, nil
}

// read appends the members stmt reads with args bound.
func (c *rawMemberConn) read(stmt uintptr, out []ListMember, keys []byte, args ...int64) ([]ListMember, []byte, error) {
	defer sqlite3.Xsqlite3_reset(c.tls, stmt)
	if err := c.bindInt64s(stmt, 1, args...); err != nil {
		return out, keys, err
	}
	for {
		if row, err := c.next(stmt, "step"); !row {
			return out, keys, err
		}
		var m *ListMember
		out, m = nextMember(out)
		m.ContactID = sqlite3.Xsqlite3_column_int64(c.tls, stmt, 0)
		m.Attributes = append(m.Attributes[:0], c.colText(stmt, 1)...)
		m.Email, m.Phone, m.Ref = "", "", ""
		col := int32(2)
		if c.keys&MemberEmail != 0 {
			m.Email, keys = arenaString(c.colText(stmt, col), keys, 16<<10)
			col++
		}
		if c.keys&MemberPhone != 0 {
			m.Phone, keys = arenaString(c.colText(stmt, col), keys, 16<<10)
			col++
		}
		if c.keys&MemberRef != 0 {
			m.Ref, keys = arenaString(c.colText(stmt, col), keys, 16<<10)
		}
	}
}

func (c *rawMemberConn) close() { c.closeWith(&c.stmt, &c.ranges, &c.contacts, &c.begin, &c.commit) }
