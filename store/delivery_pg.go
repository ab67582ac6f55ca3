package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The PostgreSQL forms of the sender's multi-row statements. PostgreSQL
// gives a VALUES list's parameters no type of their own (text), so the
// first row casts each column and the others follow it; its VALUES
// columns are named column1... as SQLite's are.
var completeSentPGSQLs, insertAttemptsPGSQLs = func() (sent, attempts map[int]string) {
	sent, attempts = map[int]string{}, map[int]string{}
	for n := 1; n <= completeChunk; n *= 2 {
		rows := `(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT))`
		if n > 1 {
			rows += ", " + valuesList(n-1, 4)
		}
		sent[n] = `UPDATE messages SET status = 'sent', provider_id = v.column3, sent_at = v.column4, updated_at = v.column4,
			lease_until = 0, last_error = ''
		FROM (VALUES ` + rows + `) AS v
		WHERE messages.id = v.column1 AND messages.status = 'sending' AND messages.attempts = v.column2
		RETURNING messages.job_id, messages.channel`
		arows := `(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT))`
		if n > 1 {
			arows += ", " + valuesList(n-1, 4)
		}
		attempts[n] = `INSERT INTO attempts (message_id, attempt, at, outcome, error)
		SELECT v.column1, COALESCE((SELECT MAX(a.attempt) FROM attempts a WHERE a.message_id = v.column1), 0) + 1,
			v.column2, v.column3, v.column4
		FROM (VALUES ` + arows + `) AS v`
	}
	return sent, attempts
}()

// completeMessagesPG is CompleteMessages on PostgreSQL: the same writes,
// in a transaction retried when it loses a deadlock to another node's
// writes on the same jobs' tallies.
func (s *Store) completeMessagesPG(ctx context.Context, outs []Outcome) error {
	var sent, other []Outcome
	for _, o := range outs {
		if o.Kind == OutcomeSent {
			sent = append(sent, o)
		} else {
			other = append(other, o)
		}
	}
	err := s.retryPG(ctx, func(tx *sql.Tx) error {
		delivered := moves{}
		rest := sent
		for _, n := range chunkSizes(len(sent), completeChunk) {
			rows, err := tx.QueryContext(ctx, completeSentPGSQLs[n], completeSentArgs(rest[:n])...)
			if err != nil {
				return fmt.Errorf("cannot record %d deliveries: %w", n, err)
			}
			if _, err := scanMoves(rows, delivered); err != nil {
				return fmt.Errorf("cannot record %d deliveries: %w", n, err)
			}
			rest = rest[n:]
		}
		if err := tallyMovesPG(ctx, tx, delivered, MsgSending, MsgSent, time.Now()); err != nil {
			return err
		}
		attempts, err := completeOthersTx(ctx, tx, other)
		if err != nil {
			return err
		}
		for _, n := range chunkSizes(len(attempts), completeChunk) {
			args := make([]any, 0, 4*n)
			for _, o := range attempts[:n] {
				args = append(args, o.ID, ms(o.At), o.Kind, o.Error)
			}
			if _, err := tx.ExecContext(ctx, insertAttemptsPGSQLs[n], args...); err != nil {
				return fmt.Errorf("cannot record %d attempts: %w", n, err)
			}
			attempts = attempts[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	return nil
}

// finishJobCastSQL is finishJobSQL with the ids' text cast, which both
// engines run: finishJobTx uses it for its one job, and PostgreSQL for
// every list (SQLite's sender keeps the uncast form).
const finishJobCastSQL = `UPDATE jobs SET status = CASE WHEN status = ? THEN status ELSE ? END, finished_at = ?
	WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) AND (status IN (?, ?) OR (status = ? AND finished_at IS NULL))
	AND NOT EXISTS (SELECT 1 FROM messages WHERE job_id = jobs.id AND status IN ('queued', 'sending'))`

// finishJobsByIDPG is FinishJobsByID on PostgreSQL.
func (s *Store) finishJobsByIDPG(ctx context.Context, jobIDs []int64) (int64, error) {
	var n int64
	err := s.retryPG(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, finishJobCastSQL, finishJobArgs(jobIDs, time.Now())...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot finish %d jobs: %w", len(jobIDs), err)
	}
	return n, nil
}

// requeueExpiredLeasesPG is RequeueExpiredLeases on PostgreSQL, where the
// leases may be other nodes': one that died leaves its claims to whichever
// node's requeue sees their leases run out first (the others' updates
// find them queued and skip them).
func (s *Store) requeueExpiredLeasesPG(ctx context.Context, now time.Time, held []LeaseRef) (int64, error) {
	var n int64
	err := s.retryPG(ctx, func(tx *sql.Tx) error {
		if err := s.settleTx(ctx, tx, ` AND lease_until < ?`, ms(now)); err != nil {
			return err
		}
		var err error
		n, err = requeueExpiredTx(ctx, tx, now, held)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	return n, nil
}

// settleAllDeliveriesPG is SettleAllDeliveries on PostgreSQL.
func (s *Store) settleAllDeliveriesPG(ctx context.Context) error {
	return s.retryPG(ctx, func(tx *sql.Tx) error { return s.settleTx(ctx, tx, "") })
}
