package store

import (
	"bytes"
	"errors"
	"sync"
	"unsafe"

	sqlite3 "modernc.org/sqlite/lib"
)

// On SQLite the scheduler reads its due runs on a read-only connection of
// its own, through SQLite's C API, as a list send reads its members
// (listsend_raw.go): through database/sql each of a run's eleven columns
// cost a type call, a locked value call and a fresh Go string, and
// reading a batch was a sixth of firing it (workflow/BENCHMARKS.md,
// session 8). The strings a batch's runs share (partner, workflow) are
// made once, the others from one arena per batch.

// rawDueConn is the scheduler's read-only connection with the due-range
// queries prepared. Its mutex serializes its users (the scheduler reads
// one batch at a time; tests may call DueRuns from several goroutines).
type rawDueConn struct {
	mu sync.Mutex
	rawReadConn
	ranges uintptr // dueRangesSQL
	runsOf uintptr // dueRangeRunsSQL
	closed bool
}

// The due runs on SQLite are read through the due ranges (workflow_due.go):
// the entries due by ?1 after (?2, ?3) in due order, then each entry's
// runs that still wait with its due time, in id order, by a range scan of
// the table.
const (
	dueRangesSQL = `SELECT due_at, first_run, last_run FROM workflow_due_ranges
	WHERE due_at <= ?1 AND (due_at > ?2 OR (due_at = ?2 AND last_run > ?3)) ORDER BY due_at, first_run`
	dueRangeRunsSQL = `SELECT r.id, r.partner, r.workflow, r.contact, e.email, e.phone, e.ref, r.key, e.data, r.step
	FROM workflow_runs r NOT INDEXED JOIN events e ON e.id = r.event_id
	WHERE r.id BETWEEN ?1 AND ?2 AND r.status = 'waiting' AND r.due_at = ?3 ORDER BY r.id`
)

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

func openRawDueConn(path string) (*rawDueConn, error) {
	c := &rawDueConn{}
	var err error
	c.rawReadConn, err = openRawRead(path, "due runs", []string{dueRangesSQL, dueRangeRunsSQL}, []*uintptr{&c.ranges, &c.runsOf})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// runs reads up to limit runs due by now after (afterDue, afterID) in due
// order (due time, then id). Within a due time the entries come in
// first-run order and each entry's runs in id order; the ids up to the
// largest last run of the due time's entries read so far (or the cursor's
// id) are skipped, as an earlier entry covered them: a run in two entries
// of one due time (set to wait again until the time it was due) is read
// once, and the ids of a due time come in order. The statements are reset
// at the end, which ends their read transaction.
func (c *rawDueConn) runs(limit int, now, afterDue, afterID int64) ([]Run, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("the store is closed")
	}
	defer sqlite3.Xsqlite3_reset(c.tls, c.ranges)
	if err := c.bindInt64s(c.ranges, 1, now, afterDue, afterID); err != nil {
		return nil, err
	}
	out := make([]Run, 0, min(limit, 4096))
	var arena []byte
	var partner, workflow string
	coveredDue, covered := afterDue, afterID
	for len(out) < limit {
		if row, err := c.next(c.ranges, "cannot read due ranges"); !row {
			return out, err
		}
		due := sqlite3.Xsqlite3_column_int64(c.tls, c.ranges, 0)
		first := sqlite3.Xsqlite3_column_int64(c.tls, c.ranges, 1)
		last := sqlite3.Xsqlite3_column_int64(c.tls, c.ranges, 2)
		if due != coveredDue {
			coveredDue, covered = due, 0
		}
		lo := max(first, covered+1)
		covered = max(covered, last)
		if lo > last {
			continue
		}
		if err := c.bindInt64s(c.runsOf, 1, lo, last, due); err != nil {
			return nil, err
		}
		var err error
		out, arena, partner, workflow, err = c.rangeRuns(out, limit, due, arena, partner, workflow)
		sqlite3.Xsqlite3_reset(c.tls, c.runsOf)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rangeRuns appends the runs of the bound runsOf statement, due at due, to
// out until it holds limit runs.
func (c *rawDueConn) rangeRuns(out []Run, limit int, due int64, arena []byte, partner, workflow string) ([]Run, []byte, string, string, error) {
	stmt := c.runsOf
	for len(out) < limit {
		if row, err := c.next(stmt, "cannot read due runs"); !row {
			return out, arena, partner, workflow, err
		}
		r := Run{Status: RunWaiting, DueAt: fromMS(due)}
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
		out = append(out, r)
	}
	return out, arena, partner, workflow, nil
}

func bytesEqual(b []byte, s string) bool {
	return bytes.Equal(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

func (c *rawDueConn) text(stmt uintptr, col int32) []byte { return c.colText(stmt, col) }

// str returns b as a string made in arena.
func (c *rawDueConn) str(b []byte, arena []byte) (string, []byte) {
	return arenaString(b, arena, 32<<10)
}

func (c *rawDueConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.closeWith(&c.ranges, &c.runsOf)
}
