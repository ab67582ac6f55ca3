package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// tallyKey is one job's messages on one channel.
type tallyKey struct {
	job     int64
	channel string
}

// moves counts messages that one statement moved from one status to
// another, per job and channel: the sender's claims and deliveries are
// tallied from it, one upsert per job and channel per batch, instead of by
// a trigger per row (migration 0016).
type moves map[tallyKey]int

// add counts one moved message.
func (m moves) add(job int64, channel string) { m[tallyKey{job, channel}]++ }

// scanMoves reads the (job_id, channel) rows a statement's RETURNING
// clause gave, counting them into m, and returns how many there were.
func scanMoves(rows *sql.Rows, m moves) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var job int64
		var channel string
		if err := rows.Scan(&job, &channel); err != nil {
			return n, err
		}
		m.add(job, channel)
		n++
	}
	return n, rows.Err()
}

// Statements of tallyMovesTx.
const (
	tallyTakeSQL = `UPDATE job_counts SET n = n - ? WHERE job_id = ? AND channel = ? AND status = ?`
	tallyAddSQL  = `INSERT INTO job_counts (job_id, channel, status, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (job_id, channel, status) DO UPDATE SET n = job_counts.n + excluded.n`
	tallySentMinuteSQL = `INSERT INTO channel_minutes (channel, minute, sent, failed) VALUES (?, ?, ?, 0)
		ON CONFLICT (channel, minute) DO UPDATE SET sent = channel_minutes.sent + excluded.sent`
)

// tallySQLs are the statements tallyMovesTx runs, for prepare.
var tallySQLs = []string{tallyTakeSQL, tallyAddSQL, tallySentMinuteSQL}

// tallyMovesTx records in job_counts that the counted messages went from
// status from to status to, and, for deliveries, adds them to the
// channel's minute in channel_minutes (at now, as the trigger it replaces
// used the statement's time). It runs in the transaction that moved them.
func (s *Store) tallyMovesTx(ctx context.Context, tx *sql.Tx, m moves, from, to string, now time.Time) error {
	if len(m) == 0 {
		return nil
	}
	take, err := s.txStmt(ctx, tx, tallyTakeSQL)
	if err != nil {
		return err
	}
	add, err := s.txStmt(ctx, tx, tallyAddSQL)
	if err != nil {
		return err
	}
	perChannel := map[string]int{}
	for k, n := range m {
		if _, err := take.ExecContext(ctx, n, k.job, k.channel, from); err != nil {
			return fmt.Errorf("cannot tally job %d: %w", k.job, err)
		}
		if _, err := add.ExecContext(ctx, k.job, k.channel, to, n); err != nil {
			return fmt.Errorf("cannot tally job %d: %w", k.job, err)
		}
		perChannel[k.channel] += n
	}
	if to != MsgSent {
		return nil
	}
	minute, err := s.txStmt(ctx, tx, tallySentMinuteSQL)
	if err != nil {
		return err
	}
	for ch, n := range perChannel {
		if _, err := minute.ExecContext(ctx, ch, now.Unix()/60, n); err != nil {
			return fmt.Errorf("cannot tally deliveries of channel %s: %w", ch, err)
		}
	}
	return nil
}
