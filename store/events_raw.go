package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// On SQLite a batch's events and runs are inserted through the driver's
// own interfaces on the writer's connection, as file jobs' messages are
// (jobwriter_raw.go), and each multi-row statement binds once what its
// rows share and not at all what they all leave at the column's default:
// binding (a C copy of every text value) and database/sql's per-argument
// work were a fifth of an event's store time, and most of an event's and
// a run's columns are the same for a whole batch (partner, event name,
// workflow, status, times) or empty (email or phone, ref, key)
// (workflow/BENCHMARKS.md, session 7). PostgreSQL keeps the plain
// multi-row statements of events_batch.go.

// rawTable is a table a batch inserts into: its columns in the order of
// a row's arguments, and each column's default value (nil: none, always
// written).
type rawTable struct {
	name     string
	cols     []string
	defaults []any
	// autoID leaves the first column (the id) out of the statement: SQLite
	// gives each row the next id, which must be the one in the row's
	// arguments (checked on the statement's last insert id).
	autoID bool
}

var (
	eventsTable = rawTable{name: "events",
		cols:     []string{"id", "partner", "event_id", "name", "email", "phone", "ref", "key", "data", "source", "occurred_at", "received_at"},
		defaults: []any{nil, nil, "", nil, "", "", "", "", "{}", nil, nil, nil}}
	runsTable = rawTable{name: "workflow_runs",
		cols:     []string{"id", "partner", "workflow", "contact", "key", "status", "step", "due_at", "event_id", "created_at", "updated_at"},
		defaults: []any{nil, nil, nil, nil, "", nil, int64(0), nil, nil, nil, nil},
		// The run ids are the next ones after the table's largest, in
		// order (acceptEventsOnce): SQLite's own choice, without the seek
		// that an explicit id costs per row.
		autoID: true}
	// The settled level of the hash keys (keyhash.go): an event's id, a
	// run's contact.
	settledEventKeys = rawTable{name: "event_keys", cols: []string{"hash", "event"}, defaults: []any{nil, nil}}
	settledRunKeys   = rawTable{name: "run_keys", cols: []string{"hash", "run"}, defaults: []any{nil, nil}}
)

// rawShape is one statement's form: its table, row count, which columns
// are bound once (shared) and which are left out (shared and default).
type rawShape struct {
	table         *rawTable
	rows          int
	shared, unset uint32
}

// sql is the shape's statement:
//
//	INSERT INTO t (<shared>, <per row>) SELECT ?, ..., column1, ... FROM (VALUES (?, ...), ...)
//
// or a plain VALUES list when nothing is shared. Plain ? parameters only
// (jobwriter_shapes.go says why).
func (sh rawShape) sql() string {
	var shared, perRow []string
	for c, name := range sh.table.cols {
		switch bit := uint32(1) << c; {
		case sh.unset&bit != 0:
		case sh.shared&bit != 0:
			shared = append(shared, name)
		default:
			perRow = append(perRow, name)
		}
	}
	cols := strings.Join(append(append([]string{}, shared...), perRow...), ", ")
	if len(shared) == 0 {
		return "INSERT INTO " + sh.table.name + " (" + cols + ") VALUES " + valuesList(sh.rows, len(perRow))
	}
	sel := make([]string, 0, len(shared)+len(perRow))
	for range shared {
		sel = append(sel, "?")
	}
	for i := range perRow {
		sel = append(sel, "column"+strconv.Itoa(i+1))
	}
	return "INSERT INTO " + sh.table.name + " (" + cols + ") SELECT " + strings.Join(sel, ", ") +
		" FROM (VALUES " + valuesList(sh.rows, len(perRow)) + ")"
}

// rawEventStmts are the insert statements prepared on the writer's
// driver connection, by shape; a new connection (the pool replaced a
// broken one) starts a new set.
type rawEventStmts struct {
	mu    sync.Mutex
	conn  any
	stmts map[rawShape]driver.Stmt
	args  []driver.NamedValue
}

// insertRaw inserts rows (row-major, len(t.cols) arguments a row) of
// table t on the driver connection dc, in statements of at most
// eventChunk rows.
func (r *rawEventStmts) insertRaw(ctx context.Context, dc any, t *rawTable, args []any, rows int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if dc != r.conn {
		r.conn, r.stmts = dc, map[rawShape]driver.Stmt{}
	}
	width := len(t.cols)
	for _, n := range chunkSizes(rows, eventChunk) {
		chunk := args[:n*width]
		args = args[n*width:]
		sh := rawShape{table: t, rows: n}
		if t.autoID {
			sh.shared, sh.unset = 1, 1
		}
		if n > 1 {
			for c := range width {
				if t.autoID && c == 0 {
					continue
				}
				v := chunk[c]
				same := true
				for i := c + width; i < len(chunk); i += width {
					if chunk[i] != v {
						same = false
						break
					}
				}
				if !same {
					continue
				}
				sh.shared |= 1 << c
				if d := t.defaults[c]; d != nil && d == v {
					sh.unset |= 1 << c
				}
			}
		}
		st, ok := r.stmts[sh]
		if !ok {
			var err error
			if st, err = dc.(driver.ConnPrepareContext).PrepareContext(ctx, sh.sql()); err != nil {
				return fmt.Errorf("cannot prepare an insert into %s: %w", t.name, err)
			}
			r.stmts[sh] = st
		}
		r.args = r.args[:0]
		add := func(v any) { r.args = append(r.args, driver.NamedValue{Ordinal: len(r.args) + 1, Value: v}) }
		for c := range width {
			if bit := uint32(1) << c; sh.shared&bit != 0 && sh.unset&bit == 0 {
				add(chunk[c])
			}
		}
		for i := 0; i < len(chunk); i += width {
			for c := range width {
				if sh.shared&(1<<c) == 0 {
					add(chunk[i+c])
				}
			}
		}
		res, err := st.(driver.StmtExecContext).ExecContext(ctx, r.args)
		if err != nil {
			return err
		}
		if t.autoID {
			last, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if want := chunk[len(chunk)-width].(int64); last != want {
				return fmt.Errorf("%s: the last row got id %d, not %d", t.name, last, want)
			}
		}
	}
	return nil
}
