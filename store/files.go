package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const fileColumns = `id, partner, name, size, sha256, status, error, rows_total, rows_bad, job_id, archive_path, created_at, updated_at`

func scanFile(row interface{ Scan(...any) error }) (File, error) {
	var f File
	var jobID sql.NullInt64
	var created, updated int64
	err := row.Scan(&f.ID, &f.Partner, &f.Name, &f.Size, &f.SHA256, &f.Status, &f.Error,
		&f.RowsTotal, &f.RowsBad, &jobID, &f.ArchivePath, &created, &updated)
	f.JobID = jobID.Int64
	f.CreatedAt, f.UpdatedAt = fromMS(created), fromMS(updated)
	return f, err
}

// CreateFile records a received file and returns its id.
func (s *Store) CreateFile(ctx context.Context, f File) (int64, error) {
	now := ms(time.Now())
	var id int64
	err := s.writer.QueryRowContext(ctx, `INSERT INTO files (partner, name, size, sha256, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, f.Partner, f.Name, f.Size, f.SHA256, FileReceived, now, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("cannot record file %s: %w", f.Name, err)
	}
	return id, nil
}

// FileBySHA256 returns the partner's queued file with that content hash, if
// any: the duplicate-upload check. Rejected files do not count, so a fixed
// file may be sent again with the same bytes after a config change.
func (s *Store) FileBySHA256(ctx context.Context, partner, sha string) (File, error) {
	f, err := scanFile(s.writer.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE partner = ? AND sha256 = ? AND status = ? ORDER BY id LIMIT 1`, partner, sha, FileQueued))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, ErrNotFound
	}
	return f, err
}

// LastFileNamed returns the partner's latest file recorded under a path in
// its home, or ErrNotFound.
func (s *Store) LastFileNamed(ctx context.Context, partner, name string) (File, error) {
	f, err := scanFile(s.writer.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE partner = ? AND name = ? ORDER BY id DESC LIMIT 1`, partner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, ErrNotFound
	}
	return f, err
}

// LaterFileWithBase reports whether the partner uploaded, after the file
// with id fileID, another file with the same base name (in any folder of
// the home) and other content: reports are named by base name, so that
// upload owns them. The same bytes again (a duplicate, refused) do not
// count: the partner still wants the first upload's result.
func (s *Store) LaterFileWithBase(ctx context.Context, partner string, fileID int64, base string) (bool, error) {
	var n int
	err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE partner = ?1 AND id > ?2
		AND (name = ?3 OR substr(name, length(name) - length(?3)) = '/' || ?3)
		AND sha256 != (SELECT sha256 FROM files WHERE id = ?2)`, partner, fileID, base).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("cannot look for later uploads of %s: %w", base, err)
	}
	return n > 0, nil
}

// RejectFile marks a file rejected and stores every error. Under a
// WithClaimFence context it commits only while the claim is still the
// node's, and fails with ErrClaimLost otherwise.
func (s *Store) RejectFile(ctx context.Context, id int64, summary string, rowsTotal int, errs []FileError) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// With several nodes, a node that lost the file to another while it
	// read it must not reject it over the other's work (WithClaimFence).
	if err := checkFenceTx(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, error = ?, rows_total = ?, rows_bad = ?, updated_at = ? WHERE id = ?`,
		FileRejected, summary, rowsTotal, countRows(errs), ms(time.Now()), id); err != nil {
		return fmt.Errorf("cannot reject file %d: %w", id, err)
	}
	if err := s.insertFileErrors(ctx, tx, id, errs); err != nil {
		return err
	}
	return tx.Commit()
}

// countRows counts the distinct lines with errors (a file-level error is 0).
func countRows(errs []FileError) int {
	seen := map[int]bool{}
	for _, e := range errs {
		if e.Line > 0 {
			seen[e.Line] = true
		}
	}
	return len(seen)
}

func (s *Store) insertFileErrors(ctx context.Context, tx *sql.Tx, fileID int64, errs []FileError) error {
	if len(errs) == 0 {
		return nil
	}
	if s.pg {
		return insertFileErrorsPg(ctx, tx, fileID, errs)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO file_errors (file_id, line, col, value, error) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range errs {
		if _, err := stmt.ExecContext(ctx, fileID, e.Line, e.Column, e.Value, e.Error); err != nil {
			return fmt.Errorf("cannot store file error: %w", err)
		}
	}
	return nil
}

// SetFileArchive records where the original was moved.
func (s *Store) SetFileArchive(ctx context.Context, id int64, path string) error {
	_, err := s.writer.ExecContext(ctx, `UPDATE files SET archive_path = ?, updated_at = ? WHERE id = ?`, path, ms(time.Now()), id)
	return err
}

// File returns one file without its errors.
func (s *Store) File(ctx context.Context, id int64) (File, error) {
	f, err := scanFile(s.reader.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, ErrNotFound
	}
	return f, err
}

// FileErrors returns the stored errors of a file in line order.
func (s *Store) FileErrors(ctx context.Context, id int64, limit int) ([]FileError, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT line, col, value, error FROM file_errors WHERE file_id = ? ORDER BY line, rowid LIMIT ?`, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FileError
	for rows.Next() {
		var e FileError
		if err := rows.Scan(&e.Line, &e.Column, &e.Value, &e.Error); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FileFilter selects files for ListFiles; empty fields match all.
type FileFilter struct {
	Partner  string
	Status   string
	BeforeID int64 // paging: only ids below this
	Limit    int
}

// ListFiles returns files, newest first.
func (s *Store) ListFiles(ctx context.Context, f FileFilter) ([]File, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.BeforeID <= 0 {
		f.BeforeID = 1 << 62
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE (? = '' OR partner = ?) AND (? = '' OR status = ?) AND id < ?
		ORDER BY id DESC LIMIT ?`, f.Partner, f.Partner, f.Status, f.Status, f.BeforeID, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		file, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, file)
	}
	return out, rows.Err()
}
