package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IngestAttempt is an upload being ingested, recorded before its
// processing starts: a record still there at the next start is an attempt
// that did not finish.
type IngestAttempt struct {
	Partner string
	Name    string // path in the partner home
	Size    int64
	MTime   int64 // Unix nanoseconds; with Size, which upload of Name this is
	// Attempts counts the started attempts of this upload that did not end
	// normally, this one included while it runs.
	Attempts  int
	LastError string // dropgate's own failure; "" when the daemon stopped or died
	StartedAt time.Time
}

// IngestAttemptFor returns the attempt record of a path, or ErrNotFound.
func (s *Store) IngestAttemptFor(ctx context.Context, partner, name string) (IngestAttempt, error) {
	a := IngestAttempt{Partner: partner, Name: name}
	var started int64
	err := s.writer.QueryRowContext(ctx, `SELECT size, mtime, attempts, last_error, started_at FROM ingest_attempts
		WHERE partner = ? AND name = ?`, partner, name).Scan(&a.Size, &a.MTime, &a.Attempts, &a.LastError, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return IngestAttempt{}, ErrNotFound
	}
	if err != nil {
		return IngestAttempt{}, fmt.Errorf("cannot read the ingest attempts of %s: %w", name, err)
	}
	a.StartedAt = fromMS(started)
	return a, nil
}

// StartIngestAttempt records an attempt before its processing starts,
// replacing any record of the path.
func (s *Store) StartIngestAttempt(ctx context.Context, a IngestAttempt) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO ingest_attempts (partner, name, size, mtime, attempts, last_error, started_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (partner, name) DO UPDATE SET size = excluded.size, mtime = excluded.mtime,
		attempts = excluded.attempts, last_error = excluded.last_error, started_at = excluded.started_at`, a.Partner, a.Name, a.Size, a.MTime, a.Attempts, a.LastError, ms(time.Now()))
	if err != nil {
		return fmt.Errorf("cannot record the ingest attempt of %s: %w", a.Name, err)
	}
	return nil
}

// FailIngestAttempt keeps an attempt's record with the reason it failed.
func (s *Store) FailIngestAttempt(ctx context.Context, partner, name, reason string) error {
	_, err := s.writer.ExecContext(ctx, `UPDATE ingest_attempts SET last_error = ? WHERE partner = ? AND name = ?`, reason, partner, name)
	if err != nil {
		return fmt.Errorf("cannot record the failed ingest of %s: %w", name, err)
	}
	return nil
}

// EndIngestAttempt removes a path's attempt record: its processing ended.
func (s *Store) EndIngestAttempt(ctx context.Context, partner, name string) error {
	_, err := s.writer.ExecContext(ctx, `DELETE FROM ingest_attempts WHERE partner = ? AND name = ?`, partner, name)
	if err != nil {
		return fmt.Errorf("cannot clear the ingest attempt of %s: %w", name, err)
	}
	return nil
}

// UndoIngestAttempt takes back the attempt now on record for a path: its
// processing was stopped on purpose (dropgate shutting down), which says
// nothing about the upload. A first attempt's record goes away.
func (s *Store) UndoIngestAttempt(ctx context.Context, partner, name string) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot take back the ingest attempt of %s: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE ingest_attempts SET attempts = attempts - 1 WHERE partner = ? AND name = ?`, partner, name); err != nil {
		return fmt.Errorf("cannot take back the ingest attempt of %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ingest_attempts WHERE partner = ? AND name = ? AND attempts <= 0`, partner, name); err != nil {
		return fmt.Errorf("cannot take back the ingest attempt of %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot take back the ingest attempt of %s: %w", name, err)
	}
	return nil
}

// QuarantineFile records an upload that will not be read again (already
// moved to f.ArchivePath), with the reason as its error (line 0), and
// returns its id.
func (s *Store) QuarantineFile(ctx context.Context, f File, reason string) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := ms(time.Now())
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO files (partner, name, size, sha256, status, error, archive_path, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, f.Partner, f.Name, f.Size, f.SHA256, FileQuarantined, reason, f.ArchivePath, now, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("cannot quarantine file %s: %w", f.Name, err)
	}
	if err := s.insertFileErrors(ctx, tx, id, []FileError{{Line: 0, Error: reason}}); err != nil {
		return 0, err
	}
	return id, tx.Commit()
}
