package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
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

	// maybeStored is set by Add in a first import when a key of the row
	// may be stored already (the load's keyFilter has seen it).
	maybeStored bool
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
	// another type fails Begin with a *FieldTypeError. (A caller that
	// learns the types while it adds rows calls CheckFields instead.)
	Fields map[string]string
	// Rows, when known, is about how many rows the load will get (a
	// guess from the file's size will do): it sizes the first import's
	// key filter.
	Rows int
}

// listLoadCacheKiB is the writer's page cache while a list loads.
const listLoadCacheKiB = 64 << 10

// listLoadBatch is how many rows go to the writing goroutine at once.
const listLoadBatch = 512

// ListLoad writes the contacts of one file or request into a list in one
// transaction on the writer connection: nothing is visible until Commit,
// and Abort (or any failure) leaves the store as it was. Rows are written
// by a goroutine of the load, a batch at a time with a few multi-row
// statements (lists_batch.go), so the caller reads and checks the next
// rows meanwhile.
type ListLoad struct {
	s       *Store
	ctx     context.Context
	conn    *sql.Conn // the writer's, held from Begin to Commit or Abort
	tx      *sql.Tx   // on conn
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

	// The writing goroutine's: statements by shape (lists_batch.go) and
	// per-batch scratch.
	stmts   map[string]*sql.Stmt
	raw     map[string]driver.Stmt // SQLite's writes (exec), on conn
	cw      *rawWriter             // the same through the C API (lists_raw.go)
	noCAPI  bool                   // the driver's connection is not one rawConnOf knows
	scratch batchScratch
	rng     memberRange // the member range the next batch's new contacts may extend
	// filter, in a first import, holds the keys added so far (Add,
	// lists_filter.go); nil otherwise. Only the caller's goroutine uses it.
	filter *keyFilter
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
	if l.conn, err = s.writer.Conn(ctx); err != nil {
		return fail(fmt.Errorf("cannot begin: %w", err))
	}
	// Not rolled back by database/sql when ctx ends: the writes go
	// through conn.Raw (exec), which would go on outside the transaction,
	// committing each statement alone. The load stops between batches
	// when ctx ends, and Abort, which every caller defers, rolls back.
	if l.tx, err = l.conn.BeginTx(context.WithoutCancel(ctx), nil); err != nil {
		return fail(fmt.Errorf("cannot begin: %w", err))
	}
	if s.pg {
		// Rows are resolved against the contacts read (and a first
		// import assumes there are none): no other node may write the
		// partner's contacts meanwhile (contacts_pg.go).
		if err := lockPartnerContactsPG(ctx, l.tx, partner); err != nil {
			return fail(err)
		}
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
	// contact_partners, not the key indexes: on SQLite those lead with
	// the key (migration 0048).
	var any bool
	if err := l.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM contact_partners WHERE partner = ?)`, partner).Scan(&any); err != nil {
		return fail(fmt.Errorf("cannot look up contacts: %w", err))
	}
	if !any {
		l.filter = newKeyFilter(3 * opts.Rows)
	}
	// A load's transaction writes index pages all over the contacts'
	// b-trees; with the writer's usual 8 MB cache they are spilled to
	// the WAL and read back again many times over. (PostgreSQL's cache
	// is the server's shared buffers.)
	if !s.pg {
		if _, err := l.tx.ExecContext(ctx, `PRAGMA cache_size = -`+strconv.Itoa(listLoadCacheKiB)); err != nil {
			return fail(err)
		}
	}
	l.wg.Add(1)
	go l.write()
	return l, nil
}

// List is the list the load writes into.
func (l *ListLoad) List() List { return l.list }

func (l *ListLoad) prepare() error {
	if l.replace && l.s.pg {
		return l.preparePG()
	}
	if l.replace {
		// The members this load names, for Commit to keep: the connection's
		// own in-memory table (temp_store = MEMORY), a few bytes a row.
		for _, q := range []string{`CREATE TEMP TABLE IF NOT EXISTS list_seen (contact_id INTEGER PRIMARY KEY)`, `DELETE FROM temp.list_seen`} {
			if _, err := l.tx.ExecContext(l.ctx, q); err != nil {
				return fmt.Errorf("cannot prepare list load: %w", err)
			}
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
	if l.filter != nil {
		// Noted here, on the caller's goroutine, which has time to spare
		// while the load's goroutine writes (applyBatch). Every key is
		// noted, and a row is looked up if any may be stored: a key named
		// twice in one batch makes a needless lookup (the batch resolves
		// its own repeats), nothing worse.
		r.maybeStored = false
		for k, v := range [3]string{r.Email, r.Phone, r.Ref} {
			if v != "" && l.filter.note(k, v) {
				r.maybeStored = true
			}
		}
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

// CheckFields does what ListLoadOptions.Fields does at Begin, for a
// caller that learns the types while it adds the rows (a list file read
// once): names new to the partner are recorded with their type, and a
// name stored with another type fails with a *FieldTypeError. It runs in
// the load's transaction, after Finish.
func (l *ListLoad) CheckFields(fields map[string]string) error {
	if _, _, err := l.Finish(); err != nil {
		return err
	}
	return checkFieldTypesTx(l.ctx, l.tx, l.list.Partner, fields)
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
	if l.replace && l.s.pg {
		n, err := l.removeUnseenPG()
		if err != nil {
			l.Abort()
			return ListCounts{}, fmt.Errorf("cannot remove absent members: %w", err)
		}
		l.counts.Removed = n
	} else if l.replace {
		res, err := l.tx.ExecContext(ctx, `DELETE FROM list_members WHERE list_id = ? AND contact_id NOT IN (SELECT contact_id FROM temp.list_seen)`, l.list.ID)
		if err != nil {
			l.Abort()
			return ListCounts{}, fmt.Errorf("cannot remove absent members: %w", err)
		}
		n, _ := res.RowsAffected()
		r, err := removeUnseenRangesTx(ctx, l.tx, l.list.ID, "temp.list_seen")
		if err != nil {
			l.Abort()
			return ListCounts{}, fmt.Errorf("cannot remove absent members: %w", err)
		}
		l.counts.Removed = int(n) + r
		l.tx.ExecContext(ctx, `DELETE FROM temp.list_seen`)
	}
	if l.counts.Inserted > 0 {
		if err := markContactPartnerTx(ctx, l.tx, l.list.Partner); err != nil {
			l.Abort()
			return ListCounts{}, err
		}
	}
	if err := checkFenceTx(ctx, l.tx); err != nil { // fileclaims.go
		l.Abort()
		return ListCounts{}, err
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
	for _, st := range l.stmts {
		st.Close()
	}
	ctx := context.WithoutCancel(l.ctx)
	if l.tx != nil {
		l.tx.Rollback() // after Commit: sql.ErrTxDone, nothing done
	}
	if l.conn != nil {
		l.conn.Raw(func(any) error {
			for _, st := range l.raw {
				st.Close()
			}
			if l.cw != nil {
				l.cw.close()
			}
			return nil
		})
		if l.tx != nil && !l.s.pg {
			l.conn.ExecContext(ctx, `PRAGMA cache_size = -8000`)
		}
		l.conn.Close() // back to the pool, before endBulk uses it
	}
	if l.bulk {
		l.s.endBulk(ctx)
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
		if err := l.applyBatch(batch); err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
		}
	}
}

// markContactPartnerTx records that the partner has contacts (migration
// 0048), in the transaction that inserts one.
func markContactPartnerTx(ctx context.Context, tx *sql.Tx, partner string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO contact_partners (partner) VALUES (?) ON CONFLICT (partner) DO NOTHING`, partner); err != nil {
		return fmt.Errorf("cannot record the contacts of %s: %w", partner, err)
	}
	return nil
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
// do not fit. Its read-then-insert is safe across PostgreSQL nodes
// because both callers (a list load, PutContact) hold the partner's
// contacts lock (contacts_pg.go).
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
