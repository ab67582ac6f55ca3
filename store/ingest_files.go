package store

import (
	"context"
	"fmt"
	"time"
)

// ForgetReceivedFile deletes a file record still in status "received": the
// ingester calls it when it stops part-way through a file (shutdown), so the
// file, left in the inbox, is read again at the next start as if new.
func (s *Store) ForgetReceivedFile(ctx context.Context, id int64) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM files WHERE id = ? AND status = ?`, id, FileReceived); err != nil {
		return fmt.Errorf("cannot forget file %d: %w", id, err)
	}
	return nil
}

// HoldFile records an upload that does not count as complete (status
// "held") with its reason as the file's one error (line 0), and returns
// its id.
func (s *Store) HoldFile(ctx context.Context, f File, reason string) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := ms(time.Now())
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO files (partner, name, size, sha256, status, error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, f.Partner, f.Name, f.Size, f.SHA256, FileHeld, reason, now, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("cannot record held file %s: %w", f.Name, err)
	}
	if err := s.insertFileErrors(ctx, tx, id, []FileError{{Line: 0, Error: reason}}); err != nil {
		return 0, err
	}
	return id, tx.Commit()
}

// ReplaceHeldFiles marks the partner's held uploads of a name "replaced":
// a new upload of that name is being taken instead.
func (s *Store) ReplaceHeldFiles(ctx context.Context, partner, name string) error {
	_, err := s.writer.ExecContext(ctx, `UPDATE files SET status = ?, updated_at = ? WHERE partner = ? AND name = ? AND status = ?`,
		FileReplaced, ms(time.Now()), partner, name, FileHeld)
	if err != nil {
		return fmt.Errorf("cannot mark held uploads of %s replaced: %w", name, err)
	}
	return nil
}

// QueuedFilesNamed returns up to limit of the partner's queued files of a
// name recorded since a time and smaller than below bytes, largest first:
// the earlier uploads a new upload of that name may extend.
func (s *Store) QueuedFilesNamed(ctx context.Context, partner, name string, since time.Time, below int64, limit int) ([]File, error) {
	rows, err := s.writer.QueryContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE partner = ? AND name = ? AND status = ? AND created_at >= ? AND size > 0 AND size < ? AND job_id IS NOT NULL
		ORDER BY size DESC, id DESC LIMIT ?`, partner, name, FileQueued, ms(since), below, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot look up earlier uploads of %s: %w", name, err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
