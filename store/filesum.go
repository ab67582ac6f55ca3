package store

import (
	"context"
	"fmt"
	"time"
)

// SetFileContent records a file's size and SHA-256 once its one read has
// computed them: ingest hashes a file while reading it, so the record made
// before the read (CreateFile) has neither yet.
func (s *Store) SetFileContent(ctx context.Context, fileID, size int64, sha string) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE files SET size = ?, sha256 = ?, updated_at = ? WHERE id = ?`,
		size, sha, ms(time.Now()), fileID); err != nil {
		return fmt.Errorf("cannot record the content of file %d: %w", fileID, err)
	}
	return nil
}
