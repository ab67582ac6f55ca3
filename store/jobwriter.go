package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// JobWriter streams the messages of one file into an "ingesting" job, in
// batched transactions written by a background goroutine so that reading and
// rendering the next rows overlaps with SQLite's work. Nothing it writes is
// visible to the sender until Commit switches the job to "queued"; Abort
// removes it all. Several JobWriters may write at once: each batch is one
// transaction on the store's single writer connection, and the widened WAL
// checkpoint threshold (jobwriter_wal.go) holds until the last one ends.
type JobWriter struct {
	s       *Store
	jobID   int64
	fileID  int64
	created time.Time // the job's created_at, also its messages' default send time
	size    int
	batch   []Message
	total   int

	batches chan insertBatch
	spent   chan []any     // argument arrays the flusher is done with, for reuse
	vals    []storedValues // buildInsert's scratch
	done    chan error
	// flusherDone: the flusher's result was taken from done (it sends one).
	flusherDone bool
	err         error // first flush error, reported by Add or Commit
	closed      bool
	// ended: the job was committed or aborted; a later Abort does nothing,
	// so callers may defer Abort right after BeginFileJob.
	ended bool

	// The range of ids inserted so far, stored with the job at Commit
	// (migration 0008). Written by the flusher; read after finish. The
	// file jobs of other partners written at the same time (ingest
	// workers) take turns on the writer connection, so their ids may fall
	// inside this range too: readers of the range also match job_id.
	firstID, lastID int64

	raw   any                         // the driver connection stmts were prepared on
	stmts map[insertShape]driver.Stmt // the flusher's prepared inserts, by shape
	args  []driver.NamedValue         // the flusher's argument scratch
	bulk  bool                        // holds the store's bulkWAL

	claim *FileClaim // checked at Commit (HoldClaim, fileclaims.go); nil: none
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
	if err := w.checkClaimTx(ctx, tx); err != nil {
		return err
	}
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
	if err := w.s.insertFileErrors(ctx, tx, w.fileID, rowErrs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.ended = true
	w.s.jobsQueued()
	return nil
}

// Abort deletes the job and whatever was inserted for it. Used when a file is
// rejected part-way, so a rejected file never sends anything. After a
// successful Commit, or a first Abort, it does nothing: callers defer it
// to clean up after any failure.
func (w *JobWriter) Abort(ctx context.Context) error {
	if w.ended {
		return nil
	}
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
	w.ended = true
	return nil
}
