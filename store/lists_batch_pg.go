package store

import (
	"context"
	"fmt"
)

// A list load on PostgreSQL resolves its rows as on SQLite (lists_batch.go)
// but writes them differently. Each statement is a round trip to the
// server, so a batch's rows go as arrays, one parameter per column
// (unnest), in one statement per kind of write rather than one per
// batchChunk rows: a 512-row batch is a handful of round trips, and no
// statement comes near PostgreSQL's 65,535 parameters. New contacts get
// their ids from RETURNING, matched back by key (every contact has one,
// unique within the partner), rather than from SQLite's consecutive
// rowids. The members a replace load has seen go to a temporary table
// dropped at commit. OR FAIL has no PostgreSQL spelling and needs none:
// any error aborts the whole transaction.

const (
	lookUpContactsPG = `SELECT id, email, phone, ref, attributes FROM contacts WHERE partner = ? AND %s = ANY(?::text[])`
	lookUpStatusesPG = `SELECT contact_id, status FROM list_members WHERE list_id = ? AND contact_id = ANY(?::bigint[])`
	updateContactsPG = `UPDATE contacts SET email = NULLIF(v.email, ''), phone = NULLIF(v.phone, ''), ref = NULLIF(v.ref, ''),
		attributes = v.attributes, updated_at = ?
		FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[]) AS v(id, email, phone, ref, attributes)
		WHERE contacts.id = v.id`
	insertContactsPG = `INSERT INTO contacts (partner, created_at, updated_at, email, phone, ref, attributes)
		SELECT ?, ?, ?, NULLIF(v.email, ''), NULLIF(v.phone, ''), NULLIF(v.ref, ''), v.attributes
		FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS v(email, phone, ref, attributes)
		RETURNING id, email, phone, ref`
	insertMembersPG = `INSERT INTO list_members (list_id, updated_at, contact_id, status)
		SELECT ?, ?, v.contact_id, v.status FROM unnest(?::bigint[], ?::text[]) AS v(contact_id, status)`
	upsertMembersPG = insertMembersPG + `
		ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`
	noteSeenPG = `INSERT INTO list_seen (contact_id) SELECT unnest(?::bigint[]) ON CONFLICT DO NOTHING`
)

// preparePG creates the replace load's table of members seen: the
// connection's own, unlogged, dropped when the load's transaction ends.
func (l *ListLoad) preparePG() error {
	for _, q := range []string{`CREATE TEMP TABLE IF NOT EXISTS list_seen (contact_id BIGINT PRIMARY KEY) ON COMMIT DROP`, `DELETE FROM list_seen`} {
		if _, err := l.tx.ExecContext(l.ctx, q); err != nil {
			return fmt.Errorf("cannot prepare list load: %w", err)
		}
	}
	return nil
}

// removeUnseenPG removes the list's members the load did not name and
// returns how many. NOT EXISTS plans as an anti-join whatever the number
// seen (NOT IN over a large subquery may not), and the temporary table
// is analysed first: autovacuum never sees it.
func (l *ListLoad) removeUnseenPG() (int, error) {
	if _, err := l.tx.ExecContext(l.ctx, `ANALYZE list_seen`); err != nil {
		return 0, err
	}
	res, err := l.tx.ExecContext(l.ctx, `DELETE FROM list_members m WHERE m.list_id = ?
		AND NOT EXISTS (SELECT 1 FROM list_seen s WHERE s.contact_id = m.contact_id)`, l.list.ID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	r, err := removeUnseenRangesTx(l.ctx, l.tx, l.list.ID, "list_seen")
	return int(n) + r, err
}

// lookUpPG is lookUp with one statement per key column.
func (l *ListLoad) lookUpPG(rows []ContactRow) error {
	for k, col := range keyColumns {
		keys := make([]string, 0, len(rows))
		seen := make(map[string]bool, len(rows))
		for i := range rows {
			v := [3]string{rows[i].Email, rows[i].Phone, rows[i].Ref}[k]
			if v != "" && !seen[v] {
				seen[v] = true
				keys = append(keys, v)
			}
		}
		if len(keys) == 0 {
			continue
		}
		st, err := l.stmt(fmt.Sprintf(lookUpContactsPG, col))
		if err != nil {
			return err
		}
		if err := l.scanContacts(st, []any{l.list.Partner, keys}); err != nil {
			return err
		}
	}
	return nil
}

// lookUpStatusesPG is lookUpStatuses in one statement.
func (l *ListLoad) lookUpStatusesPG() error {
	sc := &l.scratch
	if len(sc.byID) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(sc.byID))
	for id := range sc.byID {
		ids = append(ids, id)
	}
	st, err := l.stmt(lookUpStatusesPG)
	if err != nil {
		return err
	}
	rs, err := st.QueryContext(context.WithoutCancel(l.ctx), l.list.ID, ids)
	if err != nil {
		return fmt.Errorf("cannot look up list members: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		var status string
		if err := rs.Scan(&id, &status); err != nil {
			return fmt.Errorf("cannot look up list members: %w", err)
		}
		sc.byID[id].status = status
	}
	if err := rs.Err(); err != nil {
		return err
	}
	// The load makes no member ranges on PostgreSQL, but follows them
	// (lists_ranges.go).
	return l.lookUpRanges()
}

// contactColumnsPG are a batch's contacts as one array per column.
type contactColumnsPG struct {
	ids                         []int64
	emails, phones, refs, attrs []string
}

func (cc *contactColumnsPG) add(c *liveContact) {
	cc.ids = append(cc.ids, c.id)
	cc.emails = append(cc.emails, c.email)
	cc.phones = append(cc.phones, c.phone)
	cc.refs = append(cc.refs, c.ref)
	cc.attrs = append(cc.attrs, string(c.attrs))
}

// writeBatchPG is writeBatch for PostgreSQL: updates, inserts,
// memberships and the members seen, one statement each.
func (l *ListLoad) writeBatchPG() error {
	sc := &l.scratch
	ctx := context.WithoutCancel(l.ctx)
	var fresh, updated contactColumnsPG
	var freshC []*liveContact
	var members []*liveContact
	for _, c := range sc.touched {
		switch {
		case c.isNew:
			fresh.add(c)
			freshC = append(freshC, c)
		case c.dirty:
			updated.add(c)
		}
		if c.memberDirty && !c.isNew {
			members = append(members, c)
		}
	}
	if len(updated.ids) > 0 {
		st, err := l.stmt(updateContactsPG)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, l.now, updated.ids, updated.emails, updated.phones, updated.refs, updated.attrs); err != nil {
			return fmt.Errorf("cannot update contacts: %w", err)
		}
	}
	if len(freshC) > 0 {
		if err := l.insertContactsPG(ctx, &fresh, freshC); err != nil {
			return err
		}
		if err := l.writeMembersPG(ctx, insertMembersPG, freshC); err != nil {
			return err
		}
	}
	if len(members) > 0 {
		if err := l.cutMembers(members); err != nil {
			return err
		}
		if err := l.writeMembersPG(ctx, upsertMembersPG, members); err != nil {
			return err
		}
	}
	if !l.replace || len(sc.touched) == 0 {
		return nil
	}
	ids := make([]int64, len(sc.touched))
	for i, c := range sc.touched {
		ids[i] = c.id
	}
	st, err := l.stmt(noteSeenPG)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, ids); err != nil {
		return fmt.Errorf("cannot note list members: %w", err)
	}
	return nil
}

// firstKey names a contact by its first key: kind and value.
func firstKey(email, phone, ref string) string {
	switch {
	case email != "":
		return "e\x00" + email
	case phone != "":
		return "p\x00" + phone
	}
	return "r\x00" + ref
}

// insertContactsPG inserts the batch's new contacts and sets their ids.
// RETURNING's rows are matched to the contacts by key, not by position:
// PostgreSQL does not promise their order.
func (l *ListLoad) insertContactsPG(ctx context.Context, cc *contactColumnsPG, fresh []*liveContact) error {
	byKey := make(map[string]*liveContact, len(fresh))
	for _, c := range fresh {
		byKey[firstKey(c.email, c.phone, c.ref)] = c
	}
	st, err := l.stmt(insertContactsPG)
	if err != nil {
		return err
	}
	rs, err := st.QueryContext(ctx, l.list.Partner, l.now, l.now, cc.emails, cc.phones, cc.refs, cc.attrs)
	if err != nil {
		return fmt.Errorf("cannot insert contacts: %w", err)
	}
	defer rs.Close()
	n := 0
	for rs.Next() {
		var id int64
		var email, phone, ref *string
		if err := rs.Scan(&id, &email, &phone, &ref); err != nil {
			return fmt.Errorf("cannot insert contacts: %w", err)
		}
		c := byKey[firstKey(deref(email), deref(phone), deref(ref))]
		if c == nil {
			return fmt.Errorf("cannot insert contacts: the store returned a contact the load did not write")
		}
		c.id = id
		n++
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("cannot insert contacts: %w", err)
	}
	if n != len(fresh) {
		return fmt.Errorf("cannot insert contacts: %d of %d stored", n, len(fresh))
	}
	return nil
}

// writeMembersPG writes the list statuses of contacts with q, the plain
// insert (contacts new to the store) or the upsert.
func (l *ListLoad) writeMembersPG(ctx context.Context, q string, contacts []*liveContact) error {
	ids := make([]int64, len(contacts))
	statuses := make([]string, len(contacts))
	for i, c := range contacts {
		ids[i], statuses[i] = c.id, c.status
	}
	st, err := l.stmt(q)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, l.list.ID, l.now, ids, statuses); err != nil {
		return fmt.Errorf("cannot store list memberships: %w", err)
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
