package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// JobWriter streams the messages of one file into an "ingesting" job, in
// batched transactions written by a background goroutine so that reading and
// rendering the next rows overlaps with SQLite's work. Nothing it writes is
// visible to the sender until Commit switches the job to "queued"; Abort
// removes it all.
type JobWriter struct {
	s       *Store
	jobID   int64
	fileID  int64
	created time.Time // the job's created_at, also its messages' default send time
	size    int
	batch   []Message
	total   int

	batches chan insertBatch
	spent   chan []any    // argument arrays the flusher is done with, for reuse
	vals    []chunkValues // buildInsert's scratch
	done    chan error
	// flusherDone: the flusher's result was taken from done (it sends one).
	flusherDone bool
	err         error // first flush error, reported by Add or Commit
	closed      bool

	// The range of ids inserted so far, stored with the job at Commit
	// (migration 0008). Written by the flusher; read after finish.
	firstID, lastID int64

	raw   any                         // the driver connection stmts were prepared on
	stmts map[insertShape]driver.Stmt // the flusher's prepared inserts, by shape
	args  []driver.NamedValue         // the flusher's argument scratch
	bulk  bool                        // holds the store's bulkWAL
}

// bulkCheckpointPages is the WAL size, in pages, at which a commit
// checkpoints while a file job is being written (SQLite's default is 1000
// pages, 4 MB). Checkpointing every 4 MB cost a fifth to a quarter of a
// bulk insert's time (ingest/BENCHMARKS.md): the same interior and
// right-edge pages of the table and its index were copied into the
// database again at every checkpoint. With 256 MB a million-row file goes into the WAL without a checkpoint
// on the way; the pages are copied once, after the job is queued.
// Committed transactions are in the WAL either way, so a crash loses
// nothing that was committed.
const bulkCheckpointPages = 65536

// bulkWAL counts the file jobs being written; while there is one, the
// writer checkpoints only every bulkCheckpointPages.
type bulkWAL struct {
	mu sync.Mutex
	n  int
}

// beginBulk raises the writer's checkpoint threshold for a file job.
func (s *Store) beginBulk(ctx context.Context) {
	s.bulk.mu.Lock()
	defer s.bulk.mu.Unlock()
	s.bulk.n++
	if s.bulk.n == 1 {
		// A failure only costs speed.
		s.writer.ExecContext(ctx, `PRAGMA wal_autocheckpoint = `+strconv.Itoa(bulkCheckpointPages))
	}
}

// endBulk restores the default threshold after the last file job and
// checkpoints what the job wrote, on a reader connection so that the
// writer (and the sender's claims) go on meanwhile. journal_size_limit
// shrinks the WAL file back once a later write restarts it.
func (s *Store) endBulk(ctx context.Context) {
	s.bulk.mu.Lock()
	s.bulk.n--
	last := s.bulk.n == 0
	if last {
		s.writer.ExecContext(ctx, `PRAGMA journal_size_limit = 67108864`)
		s.writer.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 1000`)
	}
	s.bulk.mu.Unlock()
	if last {
		s.reader.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

// endBulk releases the job's hold on the store's bulkWAL, once.
func (w *JobWriter) endBulk(ctx context.Context) {
	if w.bulk {
		w.bulk = false
		w.s.endBulk(context.WithoutCancel(ctx))
	}
}

// BeginFileJob creates an ingesting job for a file. batchSize is the number
// of rows per insert transaction.
func (s *Store) BeginFileJob(ctx context.Context, partner string, fileID int64, fileName string, batchSize int) (*JobWriter, error) {
	now := time.Now()
	id, err := s.insertJob(ctx, s.writer, Job{Partner: partner, Source: SourceFile, FileID: fileID, FileName: fileName,
		Status: JobIngesting, Priority: PriorityBulk}, now)
	if err != nil {
		return nil, err
	}
	if batchSize < 1 {
		batchSize = 1000
	}
	w := &JobWriter{s: s, jobID: id, fileID: fileID, created: now, size: batchSize,
		batch: make([]Message, 0, batchSize), batches: make(chan insertBatch, 1), spent: make(chan []any, 2), done: make(chan error, 1)}
	s.beginBulk(ctx)
	w.bulk = true
	go w.flushLoop(context.WithoutCancel(ctx))
	return w, nil
}

// JobID is the id of the job being written.
func (w *JobWriter) JobID() int64 { return w.jobID }

// Add queues one message for insertion. A file job's messages have the
// job's partner, bulk priority and created_at, whatever m says.
func (w *JobWriter) Add(m Message) error {
	if w.err != nil {
		return w.err
	}
	w.batch = append(w.batch, m)
	w.total++
	if len(w.batch) >= w.size {
		return w.send()
	}
	return nil
}

func (w *JobWriter) send() error {
	b := w.buildInsert(w.batch, time.Now())
	// b holds copies of what the flusher needs, so the batch is reused.
	w.batch = w.batch[:0]
	select {
	case err := <-w.done: // the flusher stopped early on an error
		w.flusherDone = true
		w.err = err
		if w.err == nil {
			w.err = errors.New("job writer stopped")
		}
		return w.err
	case w.batches <- b:
	}
	return nil
}

func (w *JobWriter) flushLoop(ctx context.Context) {
	for batch := range w.batches {
		if err := w.insertMessages(ctx, batch); err != nil {
			w.done <- err
			for range w.batches { // drain so send never blocks
			}
			return
		}
		select {
		case w.spent <- batch.args:
		default:
		}
	}
	w.done <- nil
}

// finish flushes what is left and waits for the flusher.
func (w *JobWriter) finish() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil && len(w.batch) > 0 {
		w.send()
	}
	close(w.batches)
	if !w.flusherDone { // send may have taken the flusher's only result
		w.flusherDone = true
		if err := <-w.done; err != nil && w.err == nil {
			w.err = err
		}
	}
	w.closeStmts()
	return w.err
}

// Commit flushes the remaining rows, stores the rejected rows (skip_rows
// policy) and, in one transaction, makes the job visible to the sender and
// marks the file queued. A job with no messages is done at once.
func (w *JobWriter) Commit(ctx context.Context, rowsTotal int, rowErrs []FileError) error {
	defer w.endBulk(ctx) // after the commit: the checkpoint is not the job's
	if err := w.finish(); err != nil {
		w.Abort(ctx)
		return fmt.Errorf("cannot queue messages: %w", err)
	}
	tx, err := w.s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := ms(time.Now())
	status, finished := JobQueued, sql.NullInt64{}
	if w.total == 0 {
		status, finished = JobDone, sql.NullInt64{Int64: now, Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, total = ?, finished_at = ?, first_message_id = ?, last_message_id = ?
		WHERE id = ?`, status, w.total, finished, w.firstID, w.lastID, w.jobID); err != nil {
		return fmt.Errorf("cannot queue job %d: %w", w.jobID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, job_id = ?, rows_total = ?, rows_bad = ?, updated_at = ? WHERE id = ?`,
		FileQueued, w.jobID, rowsTotal, countRows(rowErrs), now, w.fileID); err != nil {
		return fmt.Errorf("cannot mark file %d queued: %w", w.fileID, err)
	}
	if err := insertFileErrors(ctx, tx, w.fileID, rowErrs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.s.jobsQueued()
	return nil
}

// Abort deletes the job and whatever was inserted for it. Used when a file is
// rejected part-way, so a rejected file never sends anything.
func (w *JobWriter) Abort(ctx context.Context) error {
	w.finish()
	ctx = context.WithoutCancel(ctx)
	defer w.endBulk(ctx)
	// Batched deletes keep each write transaction short for a large file.
	for {
		res, err := w.s.writer.ExecContext(ctx, `DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE job_id = ? LIMIT 10000)`, w.jobID)
		if err != nil {
			return fmt.Errorf("cannot remove messages of job %d: %w", w.jobID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			break
		}
	}
	if _, err := w.s.writer.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, w.jobID); err != nil {
		return fmt.Errorf("cannot remove job %d: %w", w.jobID, err)
	}
	return nil
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertJob creates a job at now, which is also its messages' created_at
// (messages have none of their own, see migration 0005).
func (s *Store) insertJob(ctx context.Context, db execer, j Job, now time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO jobs (partner, source, file_id, file_name, status, priority, total, created_at)
		VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?)`, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority, j.Total, ms(now))
	if err != nil {
		return 0, fmt.Errorf("cannot create job: %w", err)
	}
	return res.LastInsertId()
}

// insertMessageSQL inserts one message. Its partner, priority and
// created_at are its job's.
const insertMessageSQL = `INSERT INTO messages (job_id, channel, line, ref, recipient, subject, body, format, sender, vars,
	status, next_attempt_at, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

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
	// maybeShared are shared when every row of the chunk has the same value,
	// else bound per row; bit i of a shape is set when maybeShared[i] varies.
	maybeShared = []string{"channel", "subject", "format", "sender", "next_attempt_at", "expires_at", "vars"}
	// perRow are always bound per row.
	perRow = []string{"line", "ref", "recipient", "body"}
)

// insertShape is a statement's row count, which maybeShared columns vary
// (bound per row) and which are left to their column DEFAULT (shared and
// equal to it: nothing to bind or copy, fewer VDBE steps per row).
type insertShape struct {
	rows             int
	varies, defaults uint8
}

// maybeSharedDefaults are the maybeShared columns' DEFAULT values in the
// schema (nil: no default, always written).
var maybeSharedDefaults = []any{nil, "", "text", "", nil, int64(0), "{}"}

// sql builds the statement of one shape.
func (sh insertShape) sql() string {
	var cols, sel []string
	for _, c := range alwaysShared {
		cols, sel = append(cols, c), append(sel, "?")
	}
	for i, c := range maybeShared {
		if sh.varies&(1<<i) == 0 && sh.defaults&(1<<i) == 0 {
			cols, sel = append(cols, c), append(sel, "?")
		}
	}
	n := 0
	for i, c := range maybeShared {
		if sh.varies&(1<<i) != 0 {
			cols = append(cols, c)
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

// chunkValues is one row's maybeShared values, as stored.
type chunkValues struct {
	channel, subject, format, sender string
	next, expires                    int64
	vars                             string
}

func rowValues(m *Message, now time.Time) chunkValues {
	v := chunkValues{channel: m.Channel, subject: m.Subject, format: m.Format, sender: m.Sender, next: ms(now), vars: "{}"}
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

// same reports whether v and o agree on maybeShared[i].
func (v *chunkValues) same(o *chunkValues, i int) bool {
	switch i {
	case 0:
		return v.channel == o.channel
	case 1:
		return v.subject == o.subject
	case 2:
		return v.format == o.format
	case 3:
		return v.sender == o.sender
	case 4:
		return v.next == o.next
	case 5:
		return v.expires == o.expires
	}
	return v.vars == o.vars
}

func (v *chunkValues) field(i int) any {
	switch i {
	case 0:
		return v.channel
	case 1:
		return v.subject
	case 2:
		return v.format
	case 3:
		return v.sender
	case 4:
		return v.next
	case 5:
		return v.expires
	}
	return v.vars
}

// insertBatch is one batch of messages as the arguments of its INSERT
// statements. It is built by the goroutine that adds the rows (the file's
// reader, which has time to spare) so that the writer goroutine, the
// ingest's bottleneck, spends its time in SQLite: the values, shapes and
// argument lists were 8% of the writer's time (ingest/BENCHMARKS.md).
type insertBatch struct {
	chunks []insertChunk
	args   []any // every chunk's args, end to end
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
	vals := w.vals[:0]
	for i := range batch {
		vals = append(vals, rowValues(&batch[i], w.created))
	}
	w.vals = vals
	sizes := chunkSizes(len(batch), rowsPerInsert)
	b := insertBatch{chunks: make([]insertChunk, 0, len(sizes))}
	select {
	case b.args = <-w.spent:
		b.args = b.args[:0]
	default:
		b.args = make([]any, 0, len(sizes)*(len(alwaysShared)+len(maybeShared))+len(batch)*(len(maybeShared)+len(perRow)))
	}
	start := 0
	for _, n := range sizes {
		c := insertChunk{shape: insertShape{rows: n}, firstLine: batch[start].Line, lastLine: batch[start+n-1].Line}
		first := &vals[start]
		for j := start + 1; j < start+n; j++ {
			v := &vals[j]
			for f := range maybeShared {
				if c.shape.varies&(1<<f) == 0 && !v.same(first, f) {
					c.shape.varies |= 1 << f
				}
			}
		}
		for f, def := range maybeSharedDefaults {
			if c.shape.varies&(1<<f) == 0 && def != nil && first.field(f) == def {
				c.shape.defaults |= 1 << f
			}
		}
		from := len(b.args)
		b.args = append(b.args, w.jobID, MsgQueued, ms(updated))
		for f := range maybeShared {
			if c.shape.varies&(1<<f) == 0 && c.shape.defaults&(1<<f) == 0 {
				b.args = append(b.args, first.field(f))
			}
		}
		for j := start; j < start+n; j++ {
			m, v := &batch[j], &vals[j]
			for f := range maybeShared {
				if c.shape.varies&(1<<f) != 0 {
					b.args = append(b.args, v.field(f))
				}
			}
			b.args = append(b.args, int64(m.Line), m.Ref, m.Recipient, m.Body)
		}
		c.args = b.args[from:len(b.args):len(b.args)]
		b.chunks = append(b.chunks, c)
		start += n
	}
	return b
}

// insertMessages writes one batch in one transaction, on the writer's
// connection but through the driver's own interfaces: database/sql's
// per-statement work (converting every argument into a fresh
// []driver.NamedValue, the Tx's statement bookkeeping) was 5% of the
// writer's time and a third of the ingest's garbage (ingest/BENCHMARKS.md).
func (w *JobWriter) insertMessages(ctx context.Context, b insertBatch) error {
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

// messageArgCount is the number of values insertMessageSQL binds per row.
const messageArgCount = 14

// appendMessageArgs appends one message's values in insertMessageSQL order;
// now is its job's created_at, the default send time.
func appendMessageArgs(args []any, jobID int64, m *Message, now time.Time) []any {
	vars := "{}"
	if len(m.Vars) > 0 {
		vars = varsJSON(m.Vars)
	}
	next := m.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	format := m.Format
	if format == "" {
		format = "text"
	}
	var expires int64
	if !m.ExpiresAt.IsZero() {
		expires = ms(m.ExpiresAt)
	}
	return append(args, jobID, m.Channel, m.Line, m.Ref, m.Recipient, m.Subject, m.Body,
		format, m.Sender, vars, MsgQueued, ms(next), expires, ms(now))
}

// varsJSON encodes a message's variables as a JSON object with sorted keys,
// like json.Marshal but without its reflection, which the insert goroutine
// of a large file otherwise spends a good part of its time in.
func varsJSON(vars map[string]string) string {
	keys := make([]string, 0, len(vars))
	size := 2
	for k, v := range vars {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	sort.Strings(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, vars[k])
	}
	return string(append(b, '}'))
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028
// and U+2029 escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// insertMessagesTx inserts the messages of a job created at now.
func insertMessagesTx(ctx context.Context, tx *sql.Tx, jobID int64, now time.Time, batch []Message) ([]int64, error) {
	stmt, err := tx.PrepareContext(ctx, insertMessageSQL)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	ids := make([]int64, 0, len(batch))
	args := make([]any, 0, messageArgCount)
	for i := range batch {
		m := &batch[i]
		res, err := stmt.ExecContext(ctx, appendMessageArgs(args[:0], jobID, m, now)...)
		if err != nil {
			return nil, fmt.Errorf("cannot insert message for line %d: %w", m.Line, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("cannot read the id of the message for line %d: %w", m.Line, err)
		}
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		// Inserted in one transaction by the only writer: ids ascend.
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET first_message_id = ?, last_message_id = ? WHERE id = ?`,
			ids[0], ids[len(ids)-1], jobID); err != nil {
			return nil, fmt.Errorf("cannot record the message range of job %d: %w", jobID, err)
		}
	}
	return ids, tallyJob(ctx, tx, jobID)
}

// CreateJob stores a whole small job (API sends, workflow runs) in one
// transaction and returns it with the ids of its messages, in order. The
// messages have the job's partner and priority, whatever they say.
func (s *Store) CreateJob(ctx context.Context, j Job, msgs []Message) (Job, []int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Job{}, nil, err
	}
	defer tx.Rollback()
	j.Status, j.Total = JobQueued, len(msgs)
	if len(msgs) == 0 {
		j.Status = JobDone
	}
	now := time.Now()
	id, err := s.insertJob(ctx, tx, j, now)
	if err != nil {
		return Job{}, nil, err
	}
	ids, err := insertMessagesTx(ctx, tx, id, now, msgs)
	if err != nil {
		return Job{}, nil, err
	}
	if err := tx.Commit(); err != nil {
		return Job{}, nil, err
	}
	s.jobsQueued()
	j.ID = id
	return j, ids, nil
}
