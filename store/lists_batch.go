package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// A list load writes a batch of rows with a handful of statements, not
// four per row: the batch's keys are looked up with IN lists, its
// members' statuses likewise, then every row is resolved in memory (a
// contact named twice in one batch is one record), and the changes go out
// as multi-row statements of up to batchChunk rows: new contacts, updated
// contacts (UPDATE ... FROM VALUES), memberships (an upsert), and for
// replace loads the members seen. Statements run with a context that
// cannot be cancelled: modernc.org/sqlite starts a goroutine per
// statement to watch a cancellable one, which cost more than the
// statement; the load checks its context between batches instead.
//
// The writes are OR FAIL: an abortable multi-row statement inside a
// transaction keeps a statement journal of every page it changes, to undo
// itself alone on a constraint error. A load has nothing to undo alone:
// rows are resolved against the store before they are written, so a
// constraint error is a bug, and any error fails and rolls back the whole
// load.

var keyColumns = [3]string{"email", "phone", "ref"}

var emptyObject = []byte("{}")

// batchChunk is the most rows (or keys) one statement carries. Plain ?
// parameters only: numbered ones bind in quadratic time (ingest/BENCHMARKS.md).
const batchChunk = 64

// liveContact is a contact as the batch being applied has it.
type liveContact struct {
	id                int64 // 0 for a contact this batch inserts
	email, phone, ref string
	attrs             []byte
	status            string // in this list; "" when not a member
	isNew, dirty      bool   // inserted by this batch; row to update
	memberDirty       bool
	inRange           bool // its status is a member range's (lists_ranges.go)
	seen              bool // noted for a replace load
}

// batchScratch is reused from batch to batch.
type batchScratch struct {
	byKey    [3]map[string]*liveContact // email, phone, ref
	byID     map[int64]*liveContact
	touched  []*liveContact // in the order first named: inserted and found
	args     []any
	named    []driver.NamedValue
	keys     []string
	ids      []int64
	merge    [2][]attrMember
	mergeBuf []byte
	hits     []ContactRow // rows to look up in a first import
	// live holds the batch's liveContacts, reused by the next batch
	// (resolveAndWrite forgets every pointer into it first): one
	// allocation a batch, not one a row.
	live     [][]liveContact
	liveUsed int
}

// newLive returns a zeroed liveContact of the batch.
func (sc *batchScratch) newLive() *liveContact {
	const block = 256
	i, j := sc.liveUsed/block, sc.liveUsed%block
	if i == len(sc.live) {
		sc.live = append(sc.live, make([]liveContact, block))
	}
	sc.liveUsed++
	c := &sc.live[i][j]
	*c = liveContact{}
	return c
}

// stmt returns the statement for q, prepared once per load.
func (l *ListLoad) stmt(q string) (*sql.Stmt, error) {
	if st, ok := l.stmts[q]; ok {
		return st, nil
	}
	if l.stmts == nil {
		l.stmts = map[string]*sql.Stmt{}
	}
	st, err := l.tx.PrepareContext(context.WithoutCancel(l.ctx), q)
	if err != nil {
		return nil, fmt.Errorf("cannot prepare list load statement: %w", err)
	}
	l.stmts[q] = st
	return st, nil
}

// exec runs a write of the batch (SQLite) on the load's connection
// through the driver's own interfaces, as the job writer does
// (jobwriter_raw.go): database/sql's per-statement work (converting every
// argument into a fresh []driver.NamedValue, the statement's connection
// bookkeeping) was 5% of the writer's time. Statements are prepared once
// per load. The arguments are driver values already (int64, string, nil).
// When the connection is modernc.org/sqlite's as rawConnOf knows it (it
// is, unless the driver changed), they go one level lower still, through
// SQLite's C API (lists_raw.go); the driver's statements are the fallback.
func (l *ListLoad) exec(q string, args []any) (driver.Result, error) {
	ctx := context.WithoutCancel(l.ctx)
	var res driver.Result
	err := l.conn.Raw(func(dc any) error {
		if l.cw == nil && !l.noCAPI {
			if c, ok := rawConnOf(dc); ok {
				l.cw = &rawWriter{c: c}
			} else {
				l.noCAPI = true
			}
		}
		if l.cw != nil {
			r, err := l.cw.exec(q, args)
			res = r
			return err
		}
		st, ok := l.raw[q]
		if !ok {
			var err error
			if st, err = dc.(driver.ConnPrepareContext).PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("cannot prepare list load statement: %w", err)
			}
			if l.raw == nil {
				l.raw = map[string]driver.Stmt{}
			}
			l.raw[q] = st
		}
		sc := &l.scratch
		sc.named = sc.named[:0]
		for i, v := range args {
			sc.named = append(sc.named, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		var err error
		res, err = st.(driver.StmtExecContext).ExecContext(ctx, sc.named)
		return err
	})
	return res, err
}

// attrText is a contact's attributes as the TEXT parameter the STRICT
// column takes, without copying them: the bytes are a row's own (Add's
// caller hands each row a copy) or a merge's fresh copy, never written
// again, and the driver copies a bound string into SQLite. The copy was
// a 200-byte allocation per row.
func attrText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// keyArg is a contact key as a parameter: NULL when absent. (A
// sql.NullString is boxed and asked for its value per parameter.)
func keyArg(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// placeholders is "(?, ?), (?, ?)" for rows of width columns.
func placeholders(rows, width int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// in is "?, ?, ?" for n values.
func in(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// applyBatch applies rows in order.
//
// A load into a partner with no contacts yet (a first import) looks up
// only the rows whose keys the load's keyFilter may have seen (Add marks
// them maybeStored), that is, those that may name a contact of an earlier
// batch: every other key is new to the store. Lookups of every row were a third of the writer's
// work; the savepoint that earlier versions ran each optimistic batch in
// (to redo it with lookups on a conflict) cost a tenth of the load's CPU
// in journalled pages.
func (l *ListLoad) applyBatch(rows []ContactRow) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if l.filter == nil {
		return l.resolveAndWrite(rows, rows)
	}
	sc := &l.scratch
	sc.hits = sc.hits[:0]
	for i := range rows {
		if rows[i].maybeStored {
			sc.hits = append(sc.hits, rows[i])
		}
	}
	return l.resolveAndWrite(rows, sc.hits)
}

// resolveAndWrite applies rows, looking up first the stored contacts that
// the keys of lookup (rows, or those of them that may be stored) name.
func (l *ListLoad) resolveAndWrite(rows, lookup []ContactRow) error {
	sc := &l.scratch
	for k := range sc.byKey {
		if sc.byKey[k] == nil {
			sc.byKey[k] = map[string]*liveContact{}
		}
		clear(sc.byKey[k])
	}
	if sc.byID == nil {
		sc.byID = map[int64]*liveContact{}
	}
	clear(sc.byID)
	sc.touched = sc.touched[:0]
	sc.liveUsed = 0
	if len(lookup) > 0 {
		if err := l.lookUp(lookup); err != nil {
			return err
		}
		if err := l.lookUpStatuses(); err != nil {
			return err
		}
	}
	for i := range rows {
		if err := l.resolve(&rows[i]); err != nil {
			return err
		}
	}
	return l.writeBatch()
}

// lookUp loads the stored contacts any of the rows' keys names.
func (l *ListLoad) lookUp(rows []ContactRow) error {
	if l.s.pg {
		return l.lookUpPG(rows)
	}
	sc := &l.scratch
	cols := [3]string{"email", "phone", "ref"}
	for k, col := range cols {
		sc.keys = sc.keys[:0]
		seen := map[string]bool{}
		for i := range rows {
			v := [3]string{rows[i].Email, rows[i].Phone, rows[i].Ref}[k]
			if v != "" && !seen[v] {
				seen[v] = true
				sc.keys = append(sc.keys, v)
			}
		}
		for start := 0; start < len(sc.keys); start += batchChunk {
			chunk := sc.keys[start:min(start+batchChunk, len(sc.keys))]
			st, err := l.stmt(`SELECT id, email, phone, ref, attributes FROM contacts WHERE partner = ? AND ` + col + ` IN (` + in(len(chunk)) + `)`)
			if err != nil {
				return err
			}
			sc.args = append(sc.args[:0], l.list.Partner)
			for _, v := range chunk {
				sc.args = append(sc.args, v)
			}
			if err := l.scanContacts(st, sc.args); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *ListLoad) scanContacts(st *sql.Stmt, args []any) error {
	sc := &l.scratch
	rs, err := st.QueryContext(context.WithoutCancel(l.ctx), args...)
	if err != nil {
		return fmt.Errorf("cannot look up contacts: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		var email, phone, ref sql.NullString
		var attrs []byte
		if err := rs.Scan(&id, &email, &phone, &ref, &attrs); err != nil {
			return fmt.Errorf("cannot look up contacts: %w", err)
		}
		if sc.byID[id] != nil {
			continue
		}
		c := sc.newLive()
		c.id, c.email, c.phone, c.ref, c.attrs = id, email.String, phone.String, ref.String, attrs
		sc.byID[id] = c
		l.index(c)
	}
	return rs.Err()
}

// index makes c findable by each of its keys.
func (l *ListLoad) index(c *liveContact) {
	for k, v := range [3]string{c.email, c.phone, c.ref} {
		if v != "" {
			l.scratch.byKey[k][v] = c
		}
	}
}

// lookUpStatuses reads the list statuses of the contacts found.
func (l *ListLoad) lookUpStatuses() error {
	if l.s.pg {
		return l.lookUpStatusesPG()
	}
	sc := &l.scratch
	sc.ids = sc.ids[:0]
	for id := range sc.byID {
		sc.ids = append(sc.ids, id)
	}
	for start := 0; start < len(sc.ids); start += batchChunk {
		chunk := sc.ids[start:min(start+batchChunk, len(sc.ids))]
		st, err := l.stmt(`SELECT contact_id, status FROM list_members WHERE list_id = ? AND contact_id IN (` + in(len(chunk)) + `)`)
		if err != nil {
			return err
		}
		sc.args = append(sc.args[:0], l.list.ID)
		for _, id := range chunk {
			sc.args = append(sc.args, id)
		}
		rs, err := st.QueryContext(context.WithoutCancel(l.ctx), sc.args...)
		if err != nil {
			return fmt.Errorf("cannot look up list members: %w", err)
		}
		for rs.Next() {
			var id int64
			var status string
			if err := rs.Scan(&id, &status); err != nil {
				rs.Close()
				return fmt.Errorf("cannot look up list members: %w", err)
			}
			sc.byID[id].status = status
		}
		if err := rs.Close(); err != nil {
			return err
		}
	}
	return l.lookUpRanges()
}

// lookUpRanges gives the contacts found that have no list_members row the
// status of the member range that covers them, if any: one read of the
// ranges over the span of their ids.
func (l *ListLoad) lookUpRanges() error {
	sc := &l.scratch
	sc.ids = sc.ids[:0]
	for id, c := range sc.byID {
		if c.status == "" {
			sc.ids = append(sc.ids, id)
		}
	}
	if len(sc.ids) == 0 {
		return nil
	}
	slices.Sort(sc.ids)
	rs, err := rangesOverlapping(context.WithoutCancel(l.ctx), l.tx, l.list.ID, sc.ids[0], sc.ids[len(sc.ids)-1])
	if err != nil {
		return err
	}
	j := 0
	for _, r := range rs {
		for j < len(sc.ids) && sc.ids[j] < r.lo {
			j++
		}
		for ; j < len(sc.ids) && sc.ids[j] <= r.hi; j++ {
			c := sc.byID[sc.ids[j]]
			c.status, c.inRange = r.status, true
		}
	}
	return nil
}

// resolve applies one row to the batch's contacts in memory and counts it.
func (l *ListLoad) resolve(r *ContactRow) error {
	sc := &l.scratch
	keys := [3]string{r.Email, r.Phone, r.Ref}
	var found *liveContact
	foundBy := -1
	for k, v := range keys {
		if v == "" {
			continue
		}
		c := sc.byKey[k][v]
		if c == nil {
			continue
		}
		if found != nil && found != c {
			l.problems = append(l.problems, ContactRowError{Line: r.Line, Column: keyColumns[k], Value: v,
				Message: fmt.Sprintf("this %s belongs to another contact than the row's %s %s; a row's email, phone and ref must name one contact: correct the row, or change the stored contact first",
					keyColumns[k], keyColumns[foundBy], keys[foundBy])})
			return nil
		}
		found, foundBy = c, k
	}
	attrs := r.Attrs
	if len(attrs) == 0 {
		attrs = emptyObject
	}
	if found == nil {
		c := sc.newLive()
		*c = liveContact{email: r.Email, phone: r.Phone, ref: r.Ref, attrs: attrs, isNew: true, memberDirty: true, status: r.Status}
		if c.status == "" {
			c.status = Subscribed
		}
		sc.touched = append(sc.touched, c)
		l.index(c)
		l.counts.Inserted++
		return nil
	}
	c := found
	changed := false
	for k, v := range keys {
		var have *string
		switch k {
		case 0:
			have = &c.email
		case 1:
			have = &c.phone
		default:
			have = &c.ref
		}
		if v != "" && *have != v {
			*have = v
			sc.byKey[k][v] = c
			changed = true
		}
	}
	if !bytes.Equal(attrs, emptyObject) && !bytes.Equal(attrs, c.attrs) {
		merged, ok := mergeCanonical(sc.mergeBuf, c.attrs, attrs, &sc.merge)
		if !ok {
			m, err := mergeRaw(c.attrs, attrs)
			if err != nil {
				return fmt.Errorf("contact %d: %w", c.id, err)
			}
			merged = m
		} else {
			sc.mergeBuf = merged
		}
		if !bytes.Equal(merged, c.attrs) {
			c.attrs = append([]byte(nil), merged...)
			changed = true
		}
	}
	if changed && !c.isNew {
		c.dirty = true
	}
	switch {
	case c.status == "":
		c.status = r.Status
		if c.status == "" {
			c.status = Subscribed
		}
		c.memberDirty, changed = true, true
	case r.Status != "" && r.Status != c.status:
		c.status = r.Status
		c.memberDirty, changed = true, true
	}
	if changed {
		l.counts.Updated++
	} else {
		l.counts.Unchanged++
	}
	if !c.isNew && !c.seen {
		c.seen = true
		sc.touched = append(sc.touched, c)
	}
	return nil
}

// writeMembers writes the list statuses of chunk; existing is false for
// contacts this batch inserted, which cannot be members yet (a plain
// insert, cheaper than the upsert).
func (l *ListLoad) writeMembers(chunk []*liveContact, existing bool) error {
	sc := &l.scratch
	q := `INSERT OR FAIL INTO list_members (list_id, updated_at, contact_id, status)
		SELECT ?, ?, column1, column2 FROM (VALUES ` + placeholders(len(chunk), 2) + `)`
	if existing {
		q += ` WHERE true ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`
	}
	sc.args = append(sc.args[:0], l.list.ID, l.now)
	for _, c := range chunk {
		sc.args = append(sc.args, c.id, c.status)
	}
	if _, err := l.exec(q, sc.args); err != nil {
		return fmt.Errorf("cannot store list memberships: %w", err)
	}
	return nil
}

// writeNewMembers writes the memberships of the contacts this batch
// inserted. Their ids are consecutive (each insert's rows take the
// table's next rowids, and nothing else inserts contacts in the load's
// transaction), so when they share one status, which a file without a
// status column always does, they are one member range (lists_ranges.go,
// migration 0056), not a row each: the membership rows were a fifth of
// a first import's writing (ingest/BENCHMARKS.md, session 10).
func (l *ListLoad) writeNewMembers(fresh []*liveContact) error {
	if len(fresh) == 0 {
		return nil
	}
	first, last := fresh[0].id, fresh[len(fresh)-1].id
	same := last-first == int64(len(fresh)-1)
	for _, c := range fresh {
		same = same && c.status == fresh[0].status
	}
	if !same {
		for start := 0; start < len(fresh); start += batchChunk {
			if err := l.writeMembers(fresh[start:min(start+batchChunk, len(fresh))], false); err != nil {
				return err
			}
		}
		return nil
	}
	// One range for them (lists_ranges.go), or the load's last range
	// made longer when they follow it.
	sc := &l.scratch
	if l.rng.hi != 0 && l.rng.hi+1 == first && l.rng.status == fresh[0].status {
		sc.args = append(sc.args[:0], last, l.list.ID, l.rng.lo)
		if _, err := l.exec(`UPDATE OR FAIL list_member_ranges SET hi = ? WHERE list_id = ? AND lo = ?`, sc.args); err != nil {
			return fmt.Errorf("cannot store list memberships: %w", err)
		}
		l.rng.hi = last
		return nil
	}
	sc.args = append(sc.args[:0], l.list.ID, first, last, fresh[0].status, l.now)
	if _, err := l.exec(`INSERT OR FAIL INTO list_member_ranges (list_id, lo, hi, status, updated_at) VALUES (?, ?, ?, ?, ?)`, sc.args); err != nil {
		return fmt.Errorf("cannot store list memberships: %w", err)
	}
	l.rng = memberRange{lo: first, hi: last, status: fresh[0].status}
	return nil
}

// cutMembers takes the members whose status is about to change out of
// the member ranges that cover them (writeMembers then writes their
// rows).
func (l *ListLoad) cutMembers(members []*liveContact) error {
	sc := &l.scratch
	sc.ids = sc.ids[:0]
	for _, c := range members {
		if c.inRange {
			sc.ids = append(sc.ids, c.id)
			c.inRange = false
		}
	}
	if len(sc.ids) == 0 {
		return nil
	}
	slices.Sort(sc.ids)
	if _, err := cutRangesTx(context.WithoutCancel(l.ctx), l.tx, l.list.ID, sc.ids, false); err != nil {
		return err
	}
	// The range being extended may have been cut: the next batch starts
	// a range of its own.
	l.rng = memberRange{}
	return nil
}

// writeBatch writes what resolve decided: updates, inserts, memberships
// and, for replace loads, the members seen.
func (l *ListLoad) writeBatch() error {
	if l.s.pg {
		return l.writeBatchPG()
	}
	sc := &l.scratch
	var fresh, updated, members []*liveContact
	for _, c := range sc.touched {
		switch {
		case c.isNew:
			fresh = append(fresh, c)
		case c.dirty:
			updated = append(updated, c)
		}
		if c.memberDirty && !c.isNew {
			members = append(members, c)
		}
	}
	for start := 0; start < len(updated); start += batchChunk {
		chunk := updated[start:min(start+batchChunk, len(updated))]
		q := `UPDATE OR FAIL contacts SET email = v.column2, phone = v.column3, ref = v.column4, attributes = v.column5, updated_at = ?
			FROM (VALUES ` + placeholders(len(chunk), 5) + `) AS v WHERE contacts.id = v.column1`
		sc.args = append(sc.args[:0], l.now)
		for _, c := range chunk {
			sc.args = append(sc.args, c.id, keyArg(c.email), keyArg(c.phone), keyArg(c.ref), attrText(c.attrs))
		}
		if _, err := l.exec(q, sc.args); err != nil {
			return fmt.Errorf("cannot update contacts: %w", err)
		}
	}
	for start := 0; start < len(fresh); start += batchChunk {
		chunk := fresh[start:min(start+batchChunk, len(fresh))]
		q := `INSERT OR FAIL INTO contacts (partner, created_at, updated_at, email, phone, ref, attributes)
			SELECT ?, ?, ?, column1, column2, column3, column4 FROM (VALUES ` + placeholders(len(chunk), 4) + `)`
		sc.args = append(sc.args[:0], l.list.Partner, l.now, l.now)
		for _, c := range chunk {
			sc.args = append(sc.args, keyArg(c.email), keyArg(c.phone), keyArg(c.ref), attrText(c.attrs))
		}
		res, err := l.exec(q, sc.args)
		if err != nil {
			return fmt.Errorf("cannot insert contacts: %w", err)
		}
		// One statement's rows get consecutive rowids, each the table's
		// largest plus one (as the job writer relies on too).
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for i, c := range chunk {
			c.id = last - int64(len(chunk)-1-i)
		}
	}
	if err := l.writeNewMembers(fresh); err != nil {
		return err
	}
	if err := l.cutMembers(members); err != nil {
		return err
	}
	for start := 0; start < len(members); start += batchChunk {
		if err := l.writeMembers(members[start:min(start+batchChunk, len(members))], true); err != nil {
			return err
		}
	}
	if !l.replace {
		return nil
	}
	for start := 0; start < len(sc.touched); start += batchChunk {
		chunk := sc.touched[start:min(start+batchChunk, len(sc.touched))]
		q := `INSERT OR IGNORE INTO temp.list_seen (contact_id) VALUES ` + placeholders(len(chunk), 1)
		sc.args = sc.args[:0]
		for _, c := range chunk {
			sc.args = append(sc.args, c.id)
		}
		if _, err := l.exec(q, sc.args); err != nil {
			return fmt.Errorf("cannot note list members: %w", err)
		}
	}
	return nil
}
