package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// sqliteFull is SQLITE_FULL, the primary result code of a write that found
// no room on the disk (or reached max_page_count).
const sqliteFull = 13

// pgDiskFull is PostgreSQL's SQLSTATE disk_full.
const pgDiskFull = "53100"

// IsDiskFull reports whether err comes from a full disk: SQLite's
// "database or disk is full", PostgreSQL's disk_full (the server's disk),
// or ENOSPC/EDQUOT from a file write. Work that
// fails so is paused and retried when space returns, never reported as
// the partner's fault.
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteFull {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgDiskFull {
		return true
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	// Some paths wrap the driver's error with %v; its text is stable.
	return strings.Contains(err.Error(), "database or disk is full")
}

// SetFreeSpace gives the store the data folder's free space in bytes
// (diskspace.Watermark). With it, a file job lets the WAL grow to
// bulkCheckpointPages between checkpoints only when the disk has room for
// that WAL and for the database pages a checkpoint then copies; otherwise
// the WAL is checkpointed every 1000 pages as usual, slower but bounded,
// so a nearly full disk is not filled by the WAL alone. Call it before the
// store is used.
func (s *Store) SetFreeSpace(free func() uint64) { s.freeSpace = free }

// bulkWALFits reports whether the disk can take a WAL of
// bulkCheckpointPages pages twice over (the WAL, then the same pages
// checkpointed into the database).
func (s *Store) bulkWALFits() bool {
	if s.freeSpace == nil {
		return true
	}
	return s.freeSpace() >= 2*bulkCheckpointPages*4096
}

// WALSize is the size in bytes of the write-ahead log file (0 when absent).
func (s *Store) WALSize() int64 {
	if s.pg {
		return 0 // the server's WAL is not ours to watch
	}
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TruncateWAL copies the WAL into the database and truncates it to zero
// bytes, so the space a large ingest or a failed one took returns to the
// filesystem. It first checkpoints passively (readers and the writer go
// on meanwhile, and this copies nearly everything), then truncates, which
// waits briefly for readers. It reports whether the WAL was emptied:
// false when a reader kept it busy (a later call or journal_size_limit
// shrinks it then).
func (s *Store) TruncateWAL(ctx context.Context) (bool, error) {
	if s.pg {
		return true, nil // nothing of ours to truncate
	}
	if _, err := s.reader.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		return false, fmt.Errorf("cannot checkpoint the WAL: %w", err)
	}
	var busy, logPages, checkpointed int
	if err := s.reader.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &checkpointed); err != nil {
		return false, fmt.Errorf("cannot truncate the WAL: %w", err)
	}
	return busy == 0, nil
}
