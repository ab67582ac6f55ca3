package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// Every change of a run's status moves the run counts (workflow_run_counts,
// kept by triggers): a row per partner, workflow and status, locked until
// the transaction ends. A batch of events starting runs of two workflows
// and another node's scheduler moving runs of both on take those rows in
// whatever order their runs come, and can deadlock; PostgreSQL breaks the
// deadlock by failing one of the transactions. The two batch writers
// that touch several workflows (acceptEvents, AdvanceRuns) are whole
// transactions that can run again from the start, so the loser does
// (SQLite has one writer: no deadlock).

// deadlockRetries is how many times in all a batch runs before its
// deadlock is returned.
const deadlockRetries = 4

// lostDeadlockPG reports whether err is PostgreSQL failing a transaction
// to break a deadlock.
func lostDeadlockPG(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40P01"
}

// retryDeadlocks runs f, again while it loses deadlocks on PostgreSQL.
func retryDeadlocks[T any](s *Store, f func() (T, error)) (T, error) {
	for try := 1; ; try++ {
		v, err := f()
		if err == nil || !s.pg || try == deadlockRetries || !lostDeadlockPG(err) {
			return v, err
		}
	}
}
