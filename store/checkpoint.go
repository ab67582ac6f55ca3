package store

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// SQLite checkpoints the WAL (copies its pages into the database file and
// syncs both) from the connection whose commit crossed wal_autocheckpoint
// pages: here always the writer, so whichever write happened to cross the
// line (an API send, a claim, the sender's outcomes) held the only writer
// connection for the whole copy, and every write queued behind it: commits
// of 20-40 ms in an API send's p99 under a bulk send (sender/BENCHMARKS.md,
// session 6). The writer's automatic checkpoint is only a backstop
// (autoCheckpointPages) and a checkpointer of its own, on its own
// connection, copies the WAL in PASSIVE mode, which never blocks the
// writer nor waits for it: writes go on meanwhile.
//
// While file jobs or other bulk writes are written (bulkWAL) the
// checkpointer stands aside and the writer checkpoints every
// bulkCheckpointPages itself, as before, so that a large ingest does not
// copy the same pages again and again.

const (
	// autoCheckpointPages is the writer's wal_autocheckpoint outside bulk
	// writes: a backstop only. The checkpointer keeps the WAL far below it
	// on a machine with CPU to spare; when it falls behind (a starved
	// machine, a long reader) the writer checkpoints at 16 MB, so the WAL
	// cannot grow without bound: with the checkpointer alone it reached
	// 43 MB and filled a small data disk under load.
	autoCheckpointPages = 4000
	// checkpointEvery is how often the checkpointer looks for new
	// commits. Between two looks the WAL grows by what was written
	// meanwhile: at the API's and the sender's rates a few MB at most,
	// about SQLite's default threshold (1000 pages, 4 MB).
	checkpointEvery = 200 * time.Millisecond
)

// checkpointer copies the WAL into the database off the writer's path.
type checkpointer struct {
	db   *sql.DB // one connection of its own
	stop chan struct{}
	done chan struct{}
	// runs counts the checkpoints made, and copied the WAL frames in the
	// database after the last one, for tests.
	runs, copied atomic.Int64
}

// startCheckpointer opens the checkpointer's connection and starts it.
func (s *Store) startCheckpointer() error {
	db, err := openDB(s.path, false)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	s.ckpt = &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go s.runCheckpointer()
	return nil
}

// runCheckpointer checkpoints every checkpointEvery when something was
// committed since the last look (PRAGMA data_version tells, cheaply), until
// stopCheckpointer. A failed checkpoint is tried again at the next look:
// committed data is safe in the WAL either way.
func (s *Store) runCheckpointer() {
	c := s.ckpt
	defer close(c.done)
	ctx := context.Background()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	last := int64(-1)
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		s.endIdleEventBurst(ctx, time.Now()) // events_burst.go
		if s.inBulk() {
			continue
		}
		var v int64
		if err := c.db.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil || v == last {
			continue
		}
		var busy, frames, copied int64
		if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err == nil {
			last = v
			c.copied.Store(copied)
			c.runs.Add(1)
		}
	}
}

// stopCheckpointer stops the checkpointer and closes its connection.
func (s *Store) stopCheckpointer() error {
	if s.ckpt == nil {
		return nil
	}
	close(s.ckpt.stop)
	<-s.ckpt.done
	err := s.ckpt.db.Close()
	s.ckpt = nil
	return err
}
