package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
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
	partner string
	size    int
	batch   []Message
	total   int

	batches chan []Message
	done    chan error
	err     error // first flush error, reported by Add or Commit
	closed  bool
}

// BeginFileJob creates an ingesting job for a file. batchSize is the number
// of rows per insert transaction.
func (s *Store) BeginFileJob(ctx context.Context, partner string, fileID int64, fileName string, batchSize int) (*JobWriter, error) {
	id, err := s.insertJob(ctx, s.writer, Job{Partner: partner, Source: SourceFile, FileID: fileID, FileName: fileName,
		Status: JobIngesting, Priority: PriorityBulk})
	if err != nil {
		return nil, err
	}
	if batchSize < 1 {
		batchSize = 1000
	}
	w := &JobWriter{s: s, jobID: id, fileID: fileID, partner: partner, size: batchSize,
		batch: make([]Message, 0, batchSize), batches: make(chan []Message, 1), done: make(chan error, 1)}
	go w.flushLoop(context.WithoutCancel(ctx))
	return w, nil
}

// JobID is the id of the job being written.
func (w *JobWriter) JobID() int64 { return w.jobID }

// Add queues one message for insertion.
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
	select {
	case err := <-w.done: // the flusher stopped early on an error
		w.err = err
		if w.err == nil {
			w.err = errors.New("job writer stopped")
		}
		return w.err
	case w.batches <- w.batch:
	}
	w.batch = make([]Message, 0, w.size)
	return nil
}

func (w *JobWriter) flushLoop(ctx context.Context) {
	for batch := range w.batches {
		if err := w.s.insertMessages(ctx, w.jobID, batch); err != nil {
			w.done <- err
			for range w.batches { // drain so send never blocks
			}
			return
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
	if err := <-w.done; err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Commit flushes the remaining rows, stores the rejected rows (skip_rows
// policy) and, in one transaction, makes the job visible to the sender and
// marks the file queued. A job with no messages is done at once.
func (w *JobWriter) Commit(ctx context.Context, rowsTotal int, rowErrs []FileError) error {
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
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, total = ?, finished_at = ? WHERE id = ?`,
		status, w.total, finished, w.jobID); err != nil {
		return fmt.Errorf("cannot queue job %d: %w", w.jobID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, job_id = ?, rows_total = ?, rows_bad = ?, updated_at = ? WHERE id = ?`,
		FileQueued, w.jobID, rowsTotal, countRows(rowErrs), now, w.fileID); err != nil {
		return fmt.Errorf("cannot mark file %d queued: %w", w.fileID, err)
	}
	if err := insertFileErrors(ctx, tx, w.fileID, rowErrs); err != nil {
		return err
	}
	return tx.Commit()
}

// Abort deletes the job and whatever was inserted for it. Used when a file is
// rejected part-way, so a rejected file never sends anything.
func (w *JobWriter) Abort(ctx context.Context) error {
	w.finish()
	ctx = context.WithoutCancel(ctx)
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

func (s *Store) insertJob(ctx context.Context, db execer, j Job) (int64, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO jobs (partner, source, file_id, file_name, status, priority, total, created_at)
		VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?)`, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority, j.Total, ms(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("cannot create job: %w", err)
	}
	return res.LastInsertId()
}

const insertMessageSQL = `INSERT INTO messages (job_id, partner, channel, priority, line, ref, recipient, subject, body, format, sender, vars,
	status, next_attempt_at, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// rowsPerInsert is how many messages one INSERT statement of a file job
// writes. One statement per row spends most of its time in database/sql and
// the driver (binding, stepping, resetting) rather than in SQLite's b-trees;
// 64 rows of 17 values stay far below SQLite's limit of 32766 parameters.
const rowsPerInsert = 64

// insertMessages writes one batch in one transaction, rowsPerInsert rows per
// prepared multi-row INSERT: a transaction per row is several times slower,
// and a statement per row about half as fast.
func (s *Store) insertMessages(ctx context.Context, jobID int64, batch []Message) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	full := len(batch) / rowsPerInsert * rowsPerInsert
	if full > 0 {
		stmt, err := tx.PrepareContext(ctx, multiRowInsertSQL(rowsPerInsert))
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := time.Now()
		args := make([]any, 0, messageArgCount*rowsPerInsert)
		for i := 0; i < full; i += rowsPerInsert {
			args = args[:0]
			for j := i; j < i+rowsPerInsert; j++ {
				args = appendMessageArgs(args, jobID, &batch[j], now)
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("cannot insert messages for lines %d to %d: %w", batch[i].Line, batch[i+rowsPerInsert-1].Line, err)
			}
		}
	}
	if full < len(batch) {
		if _, err := insertMessagesTx(ctx, tx, jobID, batch[full:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// messageArgCount is the number of values insertMessageSQL binds per row.
const messageArgCount = 17

// multiRowInsertSQL is insertMessageSQL with n rows of values.
func multiRowInsertSQL(n int) string {
	head, row, _ := strings.Cut(insertMessageSQL, "VALUES ")
	return head + "VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// appendMessageArgs appends one message's values in insertMessageSQL order.
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
	return append(args, jobID, m.Partner, m.Channel, m.Priority, m.Line, m.Ref, m.Recipient, m.Subject, m.Body,
		format, m.Sender, vars, MsgQueued, ms(next), expires, ms(now), ms(now))
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

func insertMessagesTx(ctx context.Context, tx *sql.Tx, jobID int64, batch []Message) ([]int64, error) {
	stmt, err := tx.PrepareContext(ctx, insertMessageSQL)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	now := time.Now()
	ids := make([]int64, 0, len(batch))
	args := make([]any, 0, messageArgCount)
	for i := range batch {
		m := &batch[i]
		res, err := stmt.ExecContext(ctx, appendMessageArgs(args[:0], jobID, m, now)...)
		if err != nil {
			return nil, fmt.Errorf("cannot insert message for line %d: %w", m.Line, err)
		}
		id, _ := res.LastInsertId()
		ids = append(ids, id)
	}
	return ids, nil
}

// CreateJob stores a whole small job (API sends, workflow runs) in one
// transaction and returns it with the ids of its messages, in order.
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
	id, err := s.insertJob(ctx, tx, j)
	if err != nil {
		return Job{}, nil, err
	}
	for i := range msgs {
		msgs[i].Priority = j.Priority
		if msgs[i].Partner == "" {
			msgs[i].Partner = j.Partner
		}
	}
	ids, err := insertMessagesTx(ctx, tx, id, msgs)
	if err != nil {
		return Job{}, nil, err
	}
	if err := tx.Commit(); err != nil {
		return Job{}, nil, err
	}
	j.ID = id
	return j, ids, nil
}
