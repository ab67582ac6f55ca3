package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ContactRow is one checked contact of a list file or an API request:
// keys normalised as stored, attributes already in their canonical JSON
// (EncodeAttributes, AppendAttributes) with only the names the row gives
// (an empty cell leaves the stored value as it is).
type ContactRow struct {
	// Line is the row's line in the file, or its index in a request.
	Line              int
	Email, Phone, Ref string
	Attrs             []byte // canonical JSON object; nil or "{}": none
	// Status is Subscribed, Unsubscribed, or "" (a new member is
	// subscribed, an existing one keeps its status).
	Status string
}

// ListCounts is what a list load did, by contact.
type ListCounts struct {
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Removed counts the members a replace load took off the list.
	Removed int `json:"removed"`
}

// ContactRowError is a row that cannot be applied as it stands (its keys
// name two stored contacts).
type ContactRowError struct {
	Line          int
	Column, Value string
	Message       string
}

// ListLoadOptions say how a load applies.
type ListLoadOptions struct {
	// Replace removes, at Commit, the list's members no row named.
	Replace bool
	// Fields are the attribute types the rows' values have; a name the
	// partner has no type for yet gets this one, and a name it has with
	// another type fails Begin with a *FieldTypeError.
	Fields map[string]string
}

// listLoadBatch is how many rows go to the writing goroutine at once.
const listLoadBatch = 512

// ListLoad writes the contacts of one file or request into a list in one
// transaction on the writer connection: nothing is visible until Commit,
// and Abort (or any failure) leaves the store as it was. Rows are written
// by a goroutine of the load as they are added, with prepared statements
// and lookups by the unique key indexes, so the caller reads and checks
// the next rows meanwhile.
type ListLoad struct {
	s       *Store
	ctx     context.Context
	tx      *sql.Tx
	list    List
	replace bool
	now     int64

	in     chan []ContactRow
	batch  []ContactRow
	wg     sync.WaitGroup
	closed bool
	done   bool
	bulk   bool

	// Written by the goroutine; read after it ends (or with mu, err).
	mu       sync.Mutex
	err      error
	counts   ListCounts
	problems []ContactRowError

	byKey         [3]*sql.Stmt // email, phone, ref
	insContact    *sql.Stmt
	updContact    *sql.Stmt
	insMember     *sql.Stmt
	keepMember    *sql.Stmt
	setMember     *sql.Stmt
	markSeen      *sql.Stmt
	foundScratch  []foundContact
	attrsScratch  []byte
	storedScratch []byte
}

// BeginListLoad starts a load into the partner's list name, creating the
// list (in the load's transaction: a load that is not committed leaves no
// list behind either). bulk raises the WAL checkpoint threshold for a
// large file, as a file job does.
func (s *Store) BeginListLoad(ctx context.Context, partner, name string, opts ListLoadOptions, bulk bool) (*ListLoad, error) {
	if bulk {
		s.beginBulk(ctx)
	}
	l := &ListLoad{s: s, ctx: ctx, replace: opts.Replace, now: ms(time.Now()), bulk: bulk, in: make(chan []ContactRow, 2)}
	fail := func(err error) (*ListLoad, error) {
		l.closeAll()
		return nil, err
	}
	var err error
	if l.tx, err = s.writer.BeginTx(ctx, nil); err != nil {
		return fail(fmt.Errorf("cannot begin: %w", err))
	}
	if l.list, err = ensureListTx(ctx, l.tx, partner, name, time.Now()); err != nil {
		return fail(err)
	}
	if err := checkFieldTypesTx(ctx, l.tx, partner, opts.Fields); err != nil {
		return fail(err)
	}
	if err := l.prepare(); err != nil {
		return fail(err)
	}
	l.wg.Add(1)
	go l.write()
	return l, nil
}

// List is the list the load writes into.
func (l *ListLoad) List() List { return l.list }

func (l *ListLoad) prepare() error {
	ctx, tx := l.ctx, l.tx
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = tx.PrepareContext(ctx, q)
		return st
	}
	const cols = `SELECT id, email, phone, ref, attributes FROM contacts WHERE partner = ? AND `
	l.byKey[0] = prep(cols + `email = ?`)
	l.byKey[1] = prep(cols + `phone = ?`)
	l.byKey[2] = prep(cols + `ref = ?`)
	l.insContact = prep(`INSERT INTO contacts (partner, email, phone, ref, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	l.updContact = prep(`UPDATE contacts SET email = ?, phone = ?, ref = ?, attributes = ?, updated_at = ? WHERE id = ?`)
	l.insMember = prep(`INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (?, ?, ?, ?)`)
	l.keepMember = prep(`INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (?, ?, 'subscribed', ?)
		ON CONFLICT (list_id, contact_id) DO NOTHING`)
	l.setMember = prep(`INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
		WHERE status <> excluded.status`)
	if err != nil {
		return fmt.Errorf("cannot prepare list load: %w", err)
	}
	if l.replace {
		// The members this load names, for Commit to keep: the connection's
		// own in-memory table (temp_store = MEMORY), a few bytes a row.
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS list_seen (contact_id INTEGER PRIMARY KEY)`); err != nil {
			return fmt.Errorf("cannot prepare list load: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM temp.list_seen`); err != nil {
			return fmt.Errorf("cannot prepare list load: %w", err)
		}
		l.markSeen = prep(`INSERT OR IGNORE INTO temp.list_seen (contact_id) VALUES (?)`)
		if err != nil {
			return fmt.Errorf("cannot prepare list load: %w", err)
		}
	}
	return nil
}

// Add queues one row. It returns the load's failure, if the writing
// goroutine met one (the load can then only be aborted).
func (l *ListLoad) Add(r ContactRow) error {
	if err := l.failed(); err != nil {
		return err
	}
	if l.batch == nil {
		l.batch = make([]ContactRow, 0, listLoadBatch)
	}
	l.batch = append(l.batch, r)
	if len(l.batch) == listLoadBatch {
		return l.flush()
	}
	return nil
}

func (l *ListLoad) flush() error {
	if len(l.batch) == 0 {
		return nil
	}
	select {
	case l.in <- l.batch:
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
	l.batch = nil
	return nil
}

func (l *ListLoad) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Finish waits until every added row is written and returns the counts
// and the rows that could not be applied. Commit or Abort follows.
func (l *ListLoad) Finish() (ListCounts, []ContactRowError, error) {
	if err := l.flush(); err != nil {
		return ListCounts{}, nil, err
	}
	if !l.closed {
		l.closed = true
		close(l.in)
	}
	l.wg.Wait()
	return l.counts, l.problems, l.err
}

// Commit makes the load visible: with Replace, the members no row named
// are removed first. fileID, when not 0, is the list file, recorded as
// applied with its row count in the same transaction.
func (l *ListLoad) Commit(fileID int64, rows int) (ListCounts, error) {
	if _, _, err := l.Finish(); err != nil {
		l.Abort()
		return ListCounts{}, err
	}
	ctx := l.ctx
	if l.replace {
		res, err := l.tx.ExecContext(ctx, `DELETE FROM list_members WHERE list_id = ? AND contact_id NOT IN (SELECT contact_id FROM temp.list_seen)`, l.list.ID)
		if err != nil {
			l.Abort()
			return ListCounts{}, fmt.Errorf("cannot remove absent members: %w", err)
		}
		n, _ := res.RowsAffected()
		l.counts.Removed = int(n)
		l.tx.ExecContext(ctx, `DELETE FROM temp.list_seen`)
	}
	if fileID != 0 {
		if _, err := l.tx.ExecContext(ctx, `UPDATE files SET status = ?, rows_total = ?, updated_at = ? WHERE id = ?`,
			FileQueued, rows, ms(time.Now()), fileID); err != nil {
			l.Abort()
			return ListCounts{}, fmt.Errorf("cannot record file %d: %w", fileID, err)
		}
	}
	err := l.tx.Commit()
	l.closeAll()
	if err != nil {
		return ListCounts{}, fmt.Errorf("cannot commit list %q: %w", l.list.Name, err)
	}
	return l.counts, nil
}

// Abort rolls the load back; it does nothing after Commit and may be
// called more than once.
func (l *ListLoad) Abort() {
	if l.done {
		return
	}
	if !l.closed {
		l.closed = true
		close(l.in)
	}
	// Drain: the goroutine stops writing once the context ends or the
	// channel closes; its rows are rolled back with the transaction.
	l.wg.Wait()
	if l.tx != nil {
		l.tx.Rollback()
	}
	l.closeAll()
}

func (l *ListLoad) closeAll() {
	if l.done {
		return
	}
	l.done = true
	for _, st := range []*sql.Stmt{l.byKey[0], l.byKey[1], l.byKey[2], l.insContact, l.updContact, l.insMember, l.keepMember, l.setMember, l.markSeen} {
		if st != nil {
			st.Close()
		}
	}
	if l.tx != nil {
		l.tx.Rollback() // after Commit: sql.ErrTxDone, nothing done
	}
	if l.bulk {
		l.s.endBulk(context.WithoutCancel(l.ctx))
	}
}

// write is the load's goroutine: it applies batches until the channel
// closes; after a failure it only drains.
func (l *ListLoad) write() {
	defer l.wg.Done()
	for batch := range l.in {
		if l.failed() != nil {
			continue
		}
		for i := range batch {
			if err := l.apply(&batch[i]); err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				break
			}
		}
	}
}

// foundContact is a stored contact a row's key names.
type foundContact struct {
	id                int64
	email, phone, ref sql.NullString
	attrs             []byte
}

// apply writes one row.
func (l *ListLoad) apply(r *ContactRow) error {
	ctx := l.ctx
	keys := [3]string{r.Email, r.Phone, r.Ref}
	var found *foundContact
	l.foundScratch = l.foundScratch[:0]
	for k, v := range keys {
		if v == "" {
			continue
		}
		var fc foundContact
		err := l.byKey[k].QueryRowContext(ctx, l.list.Partner, v).Scan(&fc.id, &fc.email, &fc.phone, &fc.ref, &fc.attrs)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot look up contact: %w", err)
		}
		if found != nil && found.id != fc.id {
			l.problems = append(l.problems, ContactRowError{Line: r.Line, Column: keyColumns[k], Value: v,
				Message: fmt.Sprintf("this %s belongs to another contact than the row's %s; a row's email, phone and ref must name one contact: correct the row, or change the stored contact first", keyColumns[k], keyName(keys, found, k))})
			return nil
		}
		l.foundScratch = append(l.foundScratch, fc)
		found = &l.foundScratch[len(l.foundScratch)-1]
	}
	attrs := r.Attrs
	if len(attrs) == 0 {
		attrs = emptyObject
	}
	var id int64
	if found == nil {
		res, err := l.insContact.ExecContext(ctx, l.list.Partner, nullString(r.Email), nullString(r.Phone), nullString(r.Ref), string(attrs), l.now, l.now)
		if err != nil {
			return fmt.Errorf("cannot insert contact of line %d: %w", r.Line, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		status := r.Status
		if status == "" {
			status = Subscribed
		}
		if _, err := l.insMember.ExecContext(ctx, l.list.ID, id, status, l.now); err != nil {
			return fmt.Errorf("cannot store list membership: %w", err)
		}
		l.counts.Inserted++
		return l.seen(id)
	}
	id = found.id
	changed := false
	email, phone, ref := orKeep(r.Email, found.email.String), orKeep(r.Phone, found.phone.String), orKeep(r.Ref, found.ref.String)
	merged := found.attrs
	if !bytes.Equal(attrs, found.attrs) && !bytes.Equal(attrs, emptyObject) {
		m, err := mergeRaw(found.attrs, attrs)
		if err != nil {
			return fmt.Errorf("contact %d: %w", id, err)
		}
		merged = m
	}
	if email != found.email.String || phone != found.phone.String || ref != found.ref.String || !bytes.Equal(merged, found.attrs) {
		if _, err := l.updContact.ExecContext(ctx, nullString(email), nullString(phone), nullString(ref), string(merged), l.now, id); err != nil {
			return fmt.Errorf("cannot update contact of line %d: %w", r.Line, err)
		}
		changed = true
	}
	var res sql.Result
	var err error
	if r.Status == "" {
		res, err = l.keepMember.ExecContext(ctx, l.list.ID, id, l.now)
	} else {
		res, err = l.setMember.ExecContext(ctx, l.list.ID, id, r.Status, l.now)
	}
	if err != nil {
		return fmt.Errorf("cannot store list membership: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		changed = true
	}
	if changed {
		l.counts.Updated++
	} else {
		l.counts.Unchanged++
	}
	return l.seen(id)
}

func (l *ListLoad) seen(id int64) error {
	if l.markSeen == nil {
		return nil
	}
	if _, err := l.markSeen.ExecContext(l.ctx, id); err != nil {
		return fmt.Errorf("cannot note member: %w", err)
	}
	return nil
}

var emptyObject = []byte("{}")

var keyColumns = [3]string{"email", "phone", "ref"}

// keyName names the earlier key of the row that found the other contact.
func keyName(keys [3]string, found *foundContact, k int) string {
	for j := 0; j < k; j++ {
		if keys[j] != "" {
			return keyColumns[j] + " " + keys[j]
		}
	}
	return "other keys"
}

// ensureListTx returns the partner's list name, creating it.
func ensureListTx(ctx context.Context, tx *sql.Tx, partner, name string, now time.Time) (List, error) {
	l := List{Partner: partner, Name: name}
	var created int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO lists (partner, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (partner, name) DO UPDATE SET name = excluded.name
		RETURNING id, created_at`, partner, name, ms(now)).Scan(&l.ID, &created)
	if err != nil {
		return List{}, fmt.Errorf("cannot create list %q: %w", name, err)
	}
	l.CreatedAt = fromMS(created)
	return l, nil
}

// checkFieldTypesTx records the types of names new to the partner and
// fails with a *FieldTypeError on a name stored with a type the values
// do not fit.
func checkFieldTypesTx(ctx context.Context, tx *sql.Tx, partner string, fields map[string]string) error {
	for name, got := range fields {
		var want string
		err := tx.QueryRowContext(ctx, `SELECT type FROM contact_fields WHERE partner = ? AND name = ?`, partner, name).Scan(&want)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO contact_fields (partner, name, type) VALUES (?, ?, ?)`, partner, name, got); err != nil {
				return fmt.Errorf("cannot record attribute %q: %w", name, err)
			}
		case err != nil:
			return fmt.Errorf("cannot read attribute %q: %w", name, err)
		case !FieldFits(want, got):
			return &FieldTypeError{Name: name, Want: want, Got: got}
		}
	}
	return nil
}
