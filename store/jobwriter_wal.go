package store

import (
	"context"
	"strconv"
	"sync"
)

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
	if s.pg {
		return // no WAL of ours to tune
	}
	s.bulk.mu.Lock()
	defer s.bulk.mu.Unlock()
	s.bulk.n++
	if s.bulk.n == 1 && s.bulkWALFits() {
		// A failure only costs speed.
		s.writer.ExecContext(ctx, `PRAGMA wal_autocheckpoint = `+strconv.Itoa(bulkCheckpointPages))
	}
}

// endBulk restores the default threshold after the last file job and
// checkpoints what the job wrote, on a reader connection so that the
// writer (and the sender's claims) go on meanwhile. journal_size_limit
// shrinks the WAL file back once a later write restarts it.
func (s *Store) endBulk(ctx context.Context) {
	if s.pg {
		return
	}
	s.bulk.mu.Lock()
	s.bulk.n--
	last := s.bulk.n == 0
	if last {
		s.writer.ExecContext(ctx, `PRAGMA journal_size_limit = 67108864`)
		s.writer.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 1000`)
	}
	s.bulk.mu.Unlock()
	if last {
		s.TruncateWAL(ctx) // returns the WAL's space to the disk (diskfull.go)
	}
}

// endBulk releases the job's hold on the store's bulkWAL, once.
func (w *JobWriter) endBulk(ctx context.Context) {
	if w.bulk {
		w.bulk = false
		w.s.endBulk(context.WithoutCancel(ctx))
	}
}
