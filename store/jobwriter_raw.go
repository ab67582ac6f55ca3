package store

import (
	"context"
	"database/sql/driver"
	"fmt"
)

// insertMessages writes one batch in one transaction, on the writer's
// connection but through the driver's own interfaces: database/sql's
// per-statement work (converting every argument into a fresh
// []driver.NamedValue, the Tx's statement bookkeeping) was 5% of the
// writer's time and a third of the ingest's garbage (ingest/BENCHMARKS.md).
func (w *JobWriter) insertMessages(ctx context.Context, b insertBatch) error {
	if w.s.pg {
		return w.copyMessages(ctx, b)
	}
	conn, err := w.s.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error { return w.insertRaw(ctx, dc, b) })
}

// insertRaw is insertMessages on the driver connection dc. The statements
// are prepared on it once per shape and kept for the job's later batches.
func (w *JobWriter) insertRaw(ctx context.Context, dc any, b insertBatch) error {
	if dc != w.raw {
		// The first batch, or the pool replaced a broken connection, whose
		// statements went with it.
		w.raw, w.stmts = dc, map[insertShape]driver.Stmt{}
	}
	for _, c := range b.chunks {
		if _, ok := w.stmts[c.shape]; ok {
			continue
		}
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, c.shape.sql())
		if err != nil {
			return fmt.Errorf("cannot prepare message insert: %w", err)
		}
		w.stmts[c.shape] = st
	}
	tx, err := dc.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return err
	}
	for _, c := range b.chunks {
		w.args = w.args[:0]
		for i, v := range c.args {
			w.args = append(w.args, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		res, err := w.stmts[c.shape].(driver.StmtExecContext).ExecContext(ctx, w.args)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("cannot insert messages for lines %d to %d: %w", c.firstLine, c.lastLine, err)
		}
		// One statement's rows get consecutive rowids (each the table's
		// largest plus one), the last of them reported here.
		last, err := res.LastInsertId()
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("cannot read the ids of messages for lines %d to %d: %w", c.firstLine, c.lastLine, err)
		}
		w.noteIDs(last-int64(c.shape.rows)+1, last)
	}
	return tx.Commit()
}

// noteIDs widens the job's id range to [first, last].
func (w *JobWriter) noteIDs(first, last int64) {
	if w.firstID == 0 || first < w.firstID {
		w.firstID = first
	}
	w.lastID = max(w.lastID, last)
}

// closeStmts closes the flusher's statements, on the connection they were
// prepared on (if the pool still has it).
func (w *JobWriter) closeStmts() {
	if len(w.stmts) == 0 {
		return
	}
	ctx := context.Background()
	conn, err := w.s.writer.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Raw(func(dc any) error {
		if dc == w.raw {
			for _, st := range w.stmts {
				st.Close()
			}
		}
		return nil
	})
	w.raw, w.stmts = nil, nil
}
