package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
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

// changeKey is one job's messages on one channel that went from one status
// to another.
type changeKey struct {
	job      int64
	channel  string
	from, to string
}

// changes counts the messages that statements off the sender's hot path
// moved between statuses (cancel, retry, release, lease recovery, retried,
// failed and suppressed outcomes): no trigger counts any status change
// since migration 0040, so each of those statements returns (job_id,
// channel, status) of every row it changed, status being the new one, and
// the store tallies them with tallyChangesTx in the same transaction.
type changes map[changeKey]int

// scanChanges reads the (job_id, channel, status) rows a statement's
// RETURNING clause gave, every row having been in status from before, and
// counts them into c; it returns how many there were.
func scanChanges(rows *sql.Rows, from string, c changes) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		k := changeKey{from: from}
		if err := rows.Scan(&k.job, &k.channel, &k.to); err != nil {
			return n, err
		}
		if k.to != from {
			c[k]++
		}
		n++
	}
	return n, rows.Err()
}

// tallyFailedMinuteSQL adds failed messages to their channel's minute.
const tallyFailedMinuteSQL = `INSERT INTO channel_minutes (channel, minute, sent, failed) VALUES (?, ?, 0, ?)
	ON CONFLICT (channel, minute) DO UPDATE SET failed = channel_minutes.failed + excluded.failed`

// tallyChangesTx records the counted changes in job_counts, and failed
// messages (and any sent from a status other than sending, which
// tallyMovesTx counts) in channel_minutes at now, as the triggers of 0012
// did. It nets the changes per job_counts row and writes the rows in one
// order, (job, channel, status), the order tallyMovesPG's two statuses
// also follow, so that transactions of two nodes on PostgreSQL wait for
// each other instead of deadlocking. It runs in the transaction that
// changed the messages; it is not on the sender's hot path, so its
// statements are not kept prepared.
func tallyChangesTx(ctx context.Context, tx *sql.Tx, c changes, now time.Time) error {
	if len(c) == 0 {
		return nil
	}
	type rowKey struct {
		job     int64
		channel string
		status  string
	}
	type minuteKey struct{ channel, status string }
	delta := map[rowKey]int{}
	perMinute := map[minuteKey]int{}
	for k, n := range c {
		delta[rowKey{k.job, k.channel, k.from}] -= n
		delta[rowKey{k.job, k.channel, k.to}] += n
		if k.to == MsgFailed || (k.to == MsgSent && k.from != MsgSending) {
			perMinute[minuteKey{k.channel, k.to}] += n
		}
	}
	rks := slices.SortedFunc(maps.Keys(delta), func(a, b rowKey) int {
		return cmp.Or(cmp.Compare(a.job, b.job), cmp.Compare(a.channel, b.channel), cmp.Compare(a.status, b.status))
	})
	for _, k := range rks {
		var err error
		switch n := delta[k]; {
		case n < 0:
			_, err = tx.ExecContext(ctx, tallyTakeSQL, -n, k.job, k.channel, k.status)
		case n > 0:
			_, err = tx.ExecContext(ctx, tallyAddSQL, k.job, k.channel, k.status, n)
		}
		if err != nil {
			return fmt.Errorf("cannot tally job %d: %w", k.job, err)
		}
	}
	mks := slices.SortedFunc(maps.Keys(perMinute), func(a, b minuteKey) int {
		return cmp.Or(cmp.Compare(a.channel, b.channel), cmp.Compare(a.status, b.status))
	})
	for _, mk := range mks {
		q := tallySentMinuteSQL
		if mk.status == MsgFailed {
			q = tallyFailedMinuteSQL
		}
		if _, err := tx.ExecContext(ctx, q, mk.channel, now.Unix()/60, perMinute[mk]); err != nil {
			return fmt.Errorf("cannot tally outcomes of channel %s: %w", mk.channel, err)
		}
	}
	return nil
}
