package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL a file job's batches go in with COPY, the engine's bulk
// load: multi-row INSERTs cost a parse, a plan and a parameter each per
// value, and one INSERT per row a round trip per row. The ids come from a
// reserved range (jobcreate_pg.go), so the job knows its range as it does
// on SQLite.

// copyColumns are the columns a file job's COPY writes, in order.
var copyColumns = []string{"id", "job_id", "status", "updated_at", "channel", "subject", "format", "sender",
	"next_attempt_at", "expires_at", "vars", "line", "ref", "recipient", "body"}

// buildCopy is buildInsert on PostgreSQL: the batch as COPY rows, in one
// argument array (reused as buildInsert's is), ids left for the flusher.
func (w *JobWriter) buildCopy(batch []Message, updated time.Time) insertBatch {
	width := len(copyColumns)
	b := insertBatch{}
	select {
	case b.args = <-w.spent:
		b.args = b.args[:0]
	default:
		b.args = make([]any, 0, len(batch)*width)
	}
	upd := ms(updated)
	for i := range batch {
		m := &batch[i]
		v := messageValues(m, w.created)
		b.args = append(b.args, int64(0), w.jobID, MsgQueued, upd, v.channel, v.subject, v.format, v.sender,
			v.next, v.expires, v.vars, int64(m.Line), m.Ref, m.Recipient, m.Body)
	}
	b.rows = make([][]any, len(batch))
	for i := range b.rows {
		b.rows[i] = b.args[i*width : (i+1)*width : (i+1)*width]
	}
	if len(batch) > 0 {
		b.firstLine, b.lastLine = batch[0].Line, batch[len(batch)-1].Line
	}
	return b
}

// copyMessages is insertMessages on PostgreSQL: it reserves the batch's
// ids and copies its rows in, in one statement (so all or none of them).
func (w *JobWriter) copyMessages(ctx context.Context, b insertBatch) error {
	n := len(b.rows)
	if n == 0 {
		return nil
	}
	first, err := w.s.reserve(ctx, "messages", n)
	if err != nil {
		return err
	}
	for i, r := range b.rows {
		r[0] = first + int64(i)
	}
	conn, err := w.s.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = pgxConn(ctx, conn, func(c *pgx.Conn) error {
		_, err := c.CopyFrom(ctx, pgx.Identifier{"messages"}, copyColumns, pgx.CopyFromRows(b.rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot insert messages for lines %d to %d: %w", b.firstLine, b.lastLine, err)
	}
	w.noteIDs(first, first+int64(n)-1)
	return nil
}
