package store

import (
	"context"
	"fmt"
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
