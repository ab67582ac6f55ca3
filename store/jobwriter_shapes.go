package store

import (
	"strconv"
	"strings"
	"time"
)

// rowsPerInsert is how many messages one INSERT statement of a file job
// writes. One statement per row spends most of its time in database/sql and
// the driver (binding, stepping, resetting) rather than in SQLite's b-trees.
const rowsPerInsert = 64

// A file job's INSERT binds what varies per row and, once per statement,
// what its rows share. The statement is
//
//	INSERT INTO messages (<shared columns>, <row columns>)
//	SELECT ?, ..., column1, ... FROM (VALUES (?, ...), (?, ...), ...)
//
// so the job id, status and update time, and the channel, subject,
// format, sender, send time and vars when a chunk's rows agree on them
// (nearly always: they come from one template), cost one bound value per
// 64 rows instead of one per row; shared values equal to their column's
// DEFAULT are not named at all (partner, priority and created_at are the
// job's, not columns of messages). Plain ? parameters only: with
// numbered ones (?NNN) the driver looks each parameter's name up in a list
// as long as the statement's parameters, which made a 64-row statement
// four times slower.
var (
	// alwaysShared are bound once per statement, in this order.
	alwaysShared = []string{"job_id", "status", "updated_at"}
	// perRow are always bound per row.
	perRow = []string{"line", "ref", "recipient", "body"}
)

// sharedColumn describes a column whose value a statement's rows may
// share: bound once when every row of the chunk has the same value, else
// per row.
type sharedColumn struct {
	name  string
	value func(v *storedValues) any
	same  func(a, b *storedValues) bool
	// isDefault reports whether v holds the column's DEFAULT in the schema:
	// a chunk that shares it leaves the column out (nil: the column has no
	// default and is always written).
	isDefault func(v *storedValues) bool
}

// maybeShared are the columns a chunk's rows may share; bit i of a shape
// stands for maybeShared[i].
var maybeShared = [...]sharedColumn{
	{name: "channel",
		value: func(v *storedValues) any { return v.channel },
		same:  func(a, b *storedValues) bool { return a.channel == b.channel }},
	{name: "subject",
		value:     func(v *storedValues) any { return v.subject },
		same:      func(a, b *storedValues) bool { return a.subject == b.subject },
		isDefault: func(v *storedValues) bool { return v.subject == "" }},
	{name: "format",
		value:     func(v *storedValues) any { return v.format },
		same:      func(a, b *storedValues) bool { return a.format == b.format },
		isDefault: func(v *storedValues) bool { return v.format == "text" }},
	{name: "sender",
		value:     func(v *storedValues) any { return v.sender },
		same:      func(a, b *storedValues) bool { return a.sender == b.sender },
		isDefault: func(v *storedValues) bool { return v.sender == "" }},
	{name: "next_attempt_at",
		value: func(v *storedValues) any { return v.next },
		same:  func(a, b *storedValues) bool { return a.next == b.next }},
	{name: "expires_at",
		value:     func(v *storedValues) any { return v.expires },
		same:      func(a, b *storedValues) bool { return a.expires == b.expires },
		isDefault: func(v *storedValues) bool { return v.expires == 0 }},
	{name: "vars",
		value:     func(v *storedValues) any { return v.vars },
		same:      func(a, b *storedValues) bool { return a.vars == b.vars },
		isDefault: func(v *storedValues) bool { return v.vars == "{}" }},
}

// insertShape is a statement's row count, which maybeShared columns vary
// (bound per row) and which are left to their column DEFAULT (shared and
// equal to it: nothing to bind or copy, fewer VDBE steps per row).
type insertShape struct {
	rows             int
	varies, defaults uint8
}

// sql builds the statement of one shape.
func (sh insertShape) sql() string {
	var cols, sel []string
	for _, c := range alwaysShared {
		cols, sel = append(cols, c), append(sel, "?")
	}
	for i, c := range maybeShared {
		if sh.varies&(1<<i) == 0 && sh.defaults&(1<<i) == 0 {
			cols, sel = append(cols, c.name), append(sel, "?")
		}
	}
	n := 0
	for i, c := range maybeShared {
		if sh.varies&(1<<i) != 0 {
			cols = append(cols, c.name)
			n++
			sel = append(sel, "column"+strconv.Itoa(n))
		}
	}
	for _, c := range perRow {
		cols = append(cols, c)
		n++
		sel = append(sel, "column"+strconv.Itoa(n))
	}
	return "INSERT INTO messages (" + strings.Join(cols, ", ") + ") SELECT " + strings.Join(sel, ", ") +
		" FROM (VALUES " + valuesList(sh.rows, n) + ")"
}

// storedValues are the values a message is stored with where it may leave
// a field empty, its defaults applied.
type storedValues struct {
	channel, subject, format, sender string
	next, expires                    int64
	vars                             string
}

// messageValues applies a message's defaults, for both insert paths (file
// jobs and CreateJob): format text, sent from its job's creation (created)
// on, no expiry, no variables ("{}").
func messageValues(m *Message, created time.Time) storedValues {
	v := storedValues{channel: m.Channel, subject: m.Subject, format: m.Format, sender: m.Sender, next: ms(created), vars: "{}"}
	if v.format == "" {
		v.format = "text"
	}
	if !m.NextAttemptAt.IsZero() {
		v.next = ms(m.NextAttemptAt)
	}
	if !m.ExpiresAt.IsZero() {
		v.expires = ms(m.ExpiresAt)
	}
	if len(m.Vars) > 0 {
		v.vars = varsJSON(m.Vars)
	}
	return v
}

// insertBatch is one batch of messages as the arguments of its INSERT
// statements. It is built by the goroutine that adds the rows (the file's
// reader, which has time to spare) so that the writer goroutine, the
// ingest's bottleneck, spends its time in SQLite: the values, shapes and
// argument lists were 8% of the writer's time (ingest/BENCHMARKS.md).
type insertBatch struct {
	chunks []insertChunk
	args   []any // every chunk's args, end to end

	// On PostgreSQL (buildCopy): the rows to COPY, slices of args, and
	// the CSV lines of the first and last, for errors.
	rows                [][]any
	firstLine, lastLine int
}

// insertChunk is one INSERT statement: its shape, its arguments and, for
// errors, the CSV lines of its first and last rows.
type insertChunk struct {
	shape               insertShape
	args                []any
	firstLine, lastLine int
}

// buildInsert turns a batch into statements of rowsPerInsert rows (and
// powers of two below it for the rest, so a few shapes serve every batch):
// a transaction per row is several times slower, and a statement per row
// about half as fast. updated is the rows' updated_at. The argument array
// of a batch the flusher is done with is reused, as is the scratch of row
// values: a third less garbage for the collector, which shares the cores.
func (w *JobWriter) buildInsert(batch []Message, updated time.Time) insertBatch {
	if w.s.pg {
		return w.buildCopy(batch, updated)
	}
	vals := w.vals[:0]
	for i := range batch {
		vals = append(vals, messageValues(&batch[i], w.created))
	}
	w.vals = vals
	b := insertBatch{}
	select {
	case b.args = <-w.spent:
		b.args = b.args[:0]
	default:
	}
	b.chunks, b.args = appendChunks(nil, b.args, w.jobID, updated, batch, vals)
	return b
}

// appendChunks appends to chunks and args the INSERT statements of a job's
// batch (rowsPerInsert rows each, and powers of two below it for the rest,
// so a few shapes serve every batch), vals being the batch's stored
// values. Both insert paths use it: file jobs (buildInsert) and small jobs
// written in one transaction (insertMessagesTx).
func appendChunks(chunks []insertChunk, args []any, jobID int64, updated time.Time, batch []Message, vals []storedValues) ([]insertChunk, []any) {
	sizes := chunkSizes(len(batch), rowsPerInsert)
	if args == nil {
		args = make([]any, 0, len(sizes)*(len(alwaysShared)+len(maybeShared))+len(batch)*(len(maybeShared)+len(perRow)))
	}
	start := 0
	for _, n := range sizes {
		c := insertChunk{shape: insertShape{rows: n}, firstLine: batch[start].Line, lastLine: batch[start+n-1].Line}
		first := &vals[start]
		for j := start + 1; j < start+n; j++ {
			v := &vals[j]
			for f := range maybeShared {
				if c.shape.varies&(1<<f) == 0 && !maybeShared[f].same(v, first) {
					c.shape.varies |= 1 << f
				}
			}
		}
		for f, col := range maybeShared {
			if c.shape.varies&(1<<f) == 0 && col.isDefault != nil && col.isDefault(first) {
				c.shape.defaults |= 1 << f
			}
		}
		from := len(args)
		args = append(args, jobID, MsgQueued, ms(updated))
		for f := range maybeShared {
			if c.shape.varies&(1<<f) == 0 && c.shape.defaults&(1<<f) == 0 {
				args = append(args, maybeShared[f].value(first))
			}
		}
		for j := start; j < start+n; j++ {
			m, v := &batch[j], &vals[j]
			for f := range maybeShared {
				if c.shape.varies&(1<<f) != 0 {
					args = append(args, maybeShared[f].value(v))
				}
			}
			args = append(args, int64(m.Line), m.Ref, m.Recipient, m.Body)
		}
		chunks = append(chunks, insertChunk{shape: c.shape, args: args[from:len(args):len(args)], firstLine: c.firstLine, lastLine: c.lastLine})
		start += n
	}
	return chunks, args
}
