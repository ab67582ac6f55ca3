package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// requeuedStatus is the status of a message going back to the queue: a
// message of a job cancelled meanwhile is cancelled instead, so the job can
// finish.
const requeuedStatus = `CASE WHEN (SELECT status FROM jobs WHERE id = messages.job_id) = 'cancelled' THEN 'cancelled' ELSE 'queued' END`

// Outcome kinds of one claimed message.
const (
	OutcomeSent       = "sent"       // the provider accepted it
	OutcomeRetry      = "retry"      // transient failure: queued again at NextAttemptAt
	OutcomeFailed     = "failed"     // permanent failure, or retries exhausted
	OutcomeExpired    = "expired"    // past its max age before it was tried: failed, no attempt
	OutcomeSuppressed = "suppressed" // the recipient is suppressed: not sent, no attempt
	OutcomeReleased   = "released"   // not tried (shutdown, lease too short): queued again, attempt undone
)

// Outcome is what became of one claimed message.
type Outcome struct {
	ID            int64
	JobID         int64
	Attempt       int // the claim's attempt number
	Kind          string
	ProviderID    string
	Error         string
	At            time.Time
	NextAttemptAt time.Time // for OutcomeRetry
}

// CompleteMessages records a batch of outcomes in one transaction, and
// ignores an outcome whose claim is stale (the lease expired and the message
// was claimed again) or already recorded, so applying a batch twice is
// harmless: the sender replays its delivery log after a crash.
//
//   - A sent message becomes "sent" with its provider id and sent_at.
//   - Only retried and failed attempts get an attempts row; the successful
//     one lives in the message row and MessageAttempts adds it back.
//   - Jobs are not finished here: the sender calls FinishJobsByID with the
//     jobs left with nothing in flight.
//
// Sent outcomes, nearly all of a healthy run's, are written by multi-row
// statements in power-of-two chunks, so that a few statement shapes stay
// prepared.
func (s *Store) CompleteMessages(ctx context.Context, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	if s.pg {
		return s.completeMessagesPG(ctx, outs)
	}
	var sent, other []Outcome
	for _, o := range outs {
		if o.Kind == OutcomeSent {
			sent = append(sent, o)
		} else {
			other = append(other, o)
		}
	}
	// Every shape this batch needs, prepared before the transaction takes
	// the writer's only connection.
	sizes := chunkSizes(len(sent), completeChunk)
	qs := make([]string, 0, len(sizes)+8)
	for _, n := range sizes {
		qs = append(qs, completeSentSQL(n))
	}
	for _, n := range chunkSizes(len(other), completeChunk) {
		qs = append(qs, insertAttemptsSQL(n))
	}
	if err := s.prepare(ctx, append(qs, tallySQLs...)...); err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	release, err := s.lockWriter(ctx, false)
	if err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	defer release()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	defer tx.Rollback()
	delivered := moves{}
	for _, n := range sizes {
		st, err := s.txStmt(ctx, tx, completeSentSQL(n))
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, completeSentArgs(sent[:n])...)
		if err != nil {
			return fmt.Errorf("cannot record %d deliveries: %w", n, err)
		}
		if _, err := scanMoves(rows, delivered); err != nil {
			return fmt.Errorf("cannot record %d deliveries: %w", n, err)
		}
		sent = sent[n:]
	}
	if err := s.tallyMovesTx(ctx, tx, delivered, MsgSending, MsgSent, time.Now()); err != nil {
		return err
	}
	attempts, err := completeOthersTx(ctx, tx, other)
	if err != nil {
		return err
	}
	for _, n := range chunkSizes(len(attempts), completeChunk) {
		if err := s.insertAttemptsTx(ctx, tx, attempts[:n]); err != nil {
			return err
		}
		attempts = attempts[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	return nil
}

// completeChunk bounds the rows of one multi-row statement (4 parameters
// each, far below SQLite's limit); a power of two, see chunkSizes.
const completeChunk = 256

// claimGuard makes an outcome apply only to the claim it belongs to.
const claimGuard = ` AND status = 'sending' AND attempts = `

// completeSentSQLs and insertAttemptsSQLs hold, by row count, the text of
// every multi-row statement CompleteMessages may run, built once (the
// statement cache is keyed by text).
var completeSentSQLs, insertAttemptsSQLs = func() (sent, attempts map[int]string) {
	sent, attempts = map[int]string{}, map[int]string{}
	for n := 1; n <= completeChunk; n *= 2 {
		sent[n] = `UPDATE messages SET status = 'sent', provider_id = v.column3, sent_at = v.column4, updated_at = v.column4,
			lease_until = 0, last_error = ''
		FROM (VALUES ` + valuesList(n, 4) + `) AS v
		WHERE messages.id = v.column1 AND messages.status = 'sending' AND messages.attempts = v.column2
		RETURNING messages.job_id, messages.channel`
		attempts[n] = `INSERT INTO attempts (message_id, attempt, at, outcome, error)
		SELECT v.column1, COALESCE((SELECT MAX(a.attempt) FROM attempts a WHERE a.message_id = v.column1), 0) + 1,
			v.column2, v.column3, v.column4
		FROM (VALUES ` + valuesList(n, 4) + `) AS v`
	}
	return sent, attempts
}()

// completeSentSQL marks n messages delivered (n a power of two up to
// completeChunk); a stale claim matches no row. It returns the job and
// channel of each row it changed, which CompleteMessages tallies (no
// trigger counts sending -> sent, migration 0016).
func completeSentSQL(n int) string { return completeSentSQLs[n] }

// insertAttemptsSQL records n attempts rows (n a power of two up to
// completeChunk).
func insertAttemptsSQL(n int) string { return insertAttemptsSQLs[n] }

func completeSentArgs(outs []Outcome) []any {
	args := make([]any, 0, 4*len(outs))
	for _, o := range outs {
		args = append(args, o.ID, o.Attempt, o.ProviderID, ms(o.At))
	}
	return args
}

// completeOneTx applies one outcome other than sent, counts the status
// change into c, and reports whether its claim was current.
func completeOneTx(ctx context.Context, tx *sql.Tx, o Outcome, c changes) (bool, error) {
	at := ms(o.At)
	var q string
	var args []any
	switch o.Kind {
	case OutcomeRetry:
		q = `UPDATE messages SET status = ` + requeuedStatus + `, last_error = ?, next_attempt_at = ?, lease_until = 0, updated_at = ?`
		args = []any{o.Error, ms(o.NextAttemptAt), at}
	case OutcomeFailed:
		q = `UPDATE messages SET status = 'failed', last_error = ?, lease_until = 0, updated_at = ?`
		args = []any{o.Error, at}
	case OutcomeExpired:
		q = `UPDATE messages SET status = 'failed', last_error = ?, attempts = attempts - 1, lease_until = 0, updated_at = ?`
		args = []any{o.Error, at}
	case OutcomeSuppressed:
		q = `UPDATE messages SET status = 'suppressed', last_error = ?, attempts = attempts - 1, lease_until = 0, updated_at = ?`
		args = []any{o.Error, at}
	case OutcomeReleased:
		q = `UPDATE messages SET status = ` + requeuedStatus + `, attempts = attempts - 1, lease_until = 0, updated_at = ?`
		args = []any{at}
	default:
		return false, fmt.Errorf("cannot record delivery of message %d: unknown outcome %q", o.ID, o.Kind)
	}
	rows, err := tx.QueryContext(ctx, q+` WHERE id = ?`+claimGuard+`? RETURNING job_id, channel, status`, append(args, o.ID, o.Attempt)...)
	if err != nil {
		return false, fmt.Errorf("cannot record delivery of message %d: %w", o.ID, err)
	}
	n, err := scanChanges(rows, MsgSending, c)
	if err != nil {
		return false, fmt.Errorf("cannot record delivery of message %d: %w", o.ID, err)
	}
	return n > 0, nil
}

// insertAttemptsTx records one attempts row per outcome, numbered after the
// message's last recorded attempt rather than by the claim's number:
// RetryJob resets the counter, and the history of earlier rounds stays.
func (s *Store) insertAttemptsTx(ctx context.Context, tx *sql.Tx, outs []Outcome) error {
	args := make([]any, 0, 4*len(outs))
	for _, o := range outs {
		args = append(args, o.ID, ms(o.At), o.Kind, o.Error)
	}
	st, err := s.txStmt(ctx, tx, insertAttemptsSQL(len(outs)))
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("cannot record %d attempts: %w", len(outs), err)
	}
	return nil
}

// finishJobTx marks a queued or sending job done when none of its messages
// is queued or sending any more. A cancelled job keeps its status but gets
// its finished_at once its in-flight messages have ended.
func finishJobTx(ctx context.Context, tx *sql.Tx, jobID int64, now time.Time) error {
	if _, err := tx.ExecContext(ctx, finishJobCastSQL, finishJobArgs([]int64{jobID}, now)...); err != nil {
		return fmt.Errorf("cannot finish job %d: %w", jobID, err)
	}
	return nil
}

// finishJobSQL finishes the jobs listed as a JSON array (json_each):
// queued or sending ones become done, a cancelled one gets its finished_at,
// once none of their messages is queued or sending. A job not over costs
// one index probe.
const finishJobSQL = `UPDATE jobs SET status = CASE WHEN status = ? THEN status ELSE ? END, finished_at = ?
	WHERE id IN (SELECT value FROM json_each(?)) AND (status IN (?, ?) OR (status = ? AND finished_at IS NULL))
	AND NOT EXISTS (SELECT 1 FROM messages WHERE job_id = jobs.id AND status IN ('queued', 'sending'))`

func finishJobArgs(jobIDs []int64, now time.Time) []any {
	return []any{JobCancelled, JobDone, ms(now), idList(jobIDs), JobQueued, JobSending, JobCancelled}
}

// FinishJob finishes one job (see FinishJobsByID) and reports whether it
// ended.
func (s *Store) FinishJob(ctx context.Context, jobID int64) (bool, error) {
	n, err := s.FinishJobsByID(ctx, []int64{jobID})
	return n > 0, err
}

// FinishJobsByID marks done each listed queued or sending job none of whose
// messages is queued or sending any more (a cancelled one gets its
// finished_at), in one statement, and returns how many ended. The sender
// calls it with the jobs it delivered for that have nothing left in flight:
// a burst of one-message API jobs ends hundreds at a time.
func (s *Store) FinishJobsByID(ctx context.Context, jobIDs []int64) (int64, error) {
	if len(jobIDs) == 0 {
		return 0, nil
	}
	if s.pg {
		return s.finishJobsByIDPG(ctx, jobIDs)
	}
	st, err := s.stmts.stmt(ctx, s.writer, finishJobSQL)
	if err != nil {
		return 0, fmt.Errorf("cannot finish jobs: %w", err)
	}
	release, err := s.lockWriter(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("cannot finish jobs: %w", err)
	}
	defer release()
	res, err := st.ExecContext(ctx, finishJobArgs(jobIDs, time.Now())...)
	if err != nil {
		return 0, fmt.Errorf("cannot finish %d jobs: %w", len(jobIDs), err)
	}
	return res.RowsAffected()
}

// FinishJobs marks done every queued or sending job whose messages are all
// final (and records when a cancelled job's last in-flight message ended),
// returning how many jobs it finished. The sender runs it at start and
// periodically as a safety net; FinishJob is the per-job check.
func (s *Store) FinishJobs(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `UPDATE jobs SET status = CASE WHEN status = ? THEN status ELSE ? END, finished_at = ?
		WHERE (status IN (?, ?) OR (status = ? AND finished_at IS NULL))
		AND NOT EXISTS (SELECT 1 FROM messages WHERE job_id = jobs.id AND status IN ('queued', 'sending'))`,
		JobCancelled, JobDone, ms(now), JobQueued, JobSending, JobCancelled)
	if err != nil {
		return 0, fmt.Errorf("cannot finish jobs: %w", err)
	}
	return res.RowsAffected()
}

// RequeueExpiredLeases returns every message whose lease ended before now
// (its sender crashed or hung) to the queue, due at once, and returns how
// many. The attempt stays counted: the provider may have seen it. A message
// whose delivery was recorded but not settled (by a version before the
// sender's delivery log, which wrote sent_at first and the status later) is
// settled as sent instead: the provider has it.
func (s *Store) RequeueExpiredLeases(ctx context.Context, now time.Time) (int64, error) {
	return s.RequeueExpiredLeasesExcept(ctx, now, nil)
}

// RequeueExpiredLeasesExcept is RequeueExpiredLeases for a live sender:
// the messages held are its own claims, still in flight, and stay as they
// are though their leases ran out. A provider call that outlived its
// lease would otherwise be sent again by the next claim while it still
// ran; the lease is for a sender that died, not for one that is slow.
func (s *Store) RequeueExpiredLeasesExcept(ctx context.Context, now time.Time, held []LeaseRef) (int64, error) {
	if s.pg {
		return s.requeueExpiredLeasesPG(ctx, now, held)
	}
	if err := s.prepare(ctx, tallySQLs...); err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	defer tx.Rollback()
	if err := s.settleTx(ctx, tx, ` AND lease_until < ?`, ms(now)); err != nil {
		return 0, err
	}
	n, err := requeueExpiredTx(ctx, tx, now, held)
	if err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	return n, nil
}

// requeueExpiredTx returns to the queue the messages whose lease ended
// before now (or cancels them, their job being cancelled), except those
// held, tallies them, and returns how many.
func requeueExpiredTx(ctx context.Context, tx *sql.Tx, now time.Time, held []LeaseRef) (int64, error) {
	if len(held) == 0 {
		return requeueTx(ctx, tx, now, ` AND lease_until < ?`, ms(now))
	}
	heldIDs := make([]int64, len(held))
	for i, r := range held {
		heldIDs[i] = r.ID
	}
	ids, err := json.Marshal(heldIDs)
	if err != nil {
		return 0, err
	}
	return requeueTx(ctx, tx, now, ` AND lease_until < ? AND id NOT IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`,
		ms(now), string(ids))
}

// requeueTx returns to the queue, due at now, the messages in flight that
// cond and its arguments select among the live jobs' (a message of a
// cancelled job is cancelled instead), tallies them, and returns how many.
func requeueTx(ctx context.Context, tx *sql.Tx, now time.Time, cond string, args ...any) (int64, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET status = `+requeuedStatus+`, lease_until = 0, next_attempt_at = ?, updated_at = ?
		WHERE job_id IN (`+liveJobs+`) AND status = 'sending'`+cond+`
		RETURNING job_id, channel, status`, append([]any{ms(now), ms(now)}, args...)...)
	if err != nil {
		return 0, err
	}
	c := changes{}
	n, err := scanChanges(rows, MsgSending, c)
	if err != nil {
		return 0, err
	}
	return int64(n), tallyChangesTx(ctx, tx, c, now)
}

// liveJobs selects the jobs that can have a message in flight: a job is
// done, and a cancelled one finished, only once none is. Scoping a search
// for "sending" messages to them lets it probe messages_queue's (job_id,
// status) prefix per job instead of scanning the table.
const liveJobs = `SELECT id FROM jobs WHERE status IN ('queued', 'sending', 'paused') OR (status = 'cancelled' AND finished_at IS NULL)`

// SettleAllDeliveries settles every delivered message however long its
// lease (left by a version before the delivery log); the sender runs it at
// start.
func (s *Store) SettleAllDeliveries(ctx context.Context) error {
	if s.pg {
		return s.settleAllDeliveriesPG(ctx)
	}
	if err := s.prepare(ctx, tallySQLs...); err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	defer tx.Rollback()
	if err := s.settleTx(ctx, tx, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	return nil
}

// settleTx marks sent the messages still "sending" whose delivery was
// recorded (sent_at set), among those the extra condition and its
// arguments select, and tallies them (no trigger counts sending -> sent,
// migration 0016). The tally statements must be prepared.
func (s *Store) settleTx(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET status = 'sent', lease_until = 0, last_error = ''
		WHERE job_id IN (`+liveJobs+`) AND status = 'sending' AND sent_at IS NOT NULL`+cond+`
		RETURNING job_id, channel`, args...)
	if err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	settled := moves{}
	if _, err := scanMoves(rows, settled); err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	if s.pg {
		return tallyMovesPG(ctx, tx, settled, MsgSending, MsgSent, time.Now())
	}
	return s.tallyMovesTx(ctx, tx, settled, MsgSending, MsgSent, time.Now())
}

// LeaseRef names one claim: a message and the attempt it was claimed for.
type LeaseRef struct {
	ID      int64
	Attempt int
}

// ReleaseMessages returns claimed messages to the queue, due at once, and
// undoes their attempt count. The sender calls it on stop for messages it
// claimed but did not finish.
func (s *Store) ReleaseMessages(ctx context.Context, refs []LeaseRef) error {
	for len(refs) > 0 {
		n := min(len(refs), 400) // stays under SQLite's bound-parameter limit
		batch := refs[:n]
		refs = refs[n:]
		var sb strings.Builder
		args := make([]any, 0, 2+2*n)
		args = append(args, ms(time.Now()), ms(time.Now()))
		for i, r := range batch {
			if i > 0 {
				sb.WriteString(" OR ")
			}
			sb.WriteString("(id = ? AND attempts = ?)")
			args = append(args, r.ID, r.Attempt)
		}
		if err := s.releaseBatch(ctx, `UPDATE messages SET status = `+requeuedStatus+`, attempts = attempts - 1, lease_until = 0,
			next_attempt_at = ?, updated_at = ? WHERE status = 'sending' AND sent_at IS NULL AND (`+sb.String()+`)
			RETURNING job_id, channel, status`, args); err != nil {
			return fmt.Errorf("cannot release %d messages: %w", len(batch), err)
		}
	}
	return nil
}

// releaseBatch runs one statement of ReleaseMessages and tallies what it
// changed, in one transaction.
func (s *Store) releaseBatch(ctx context.Context, q string, args []any) error {
	f := func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		c := changes{}
		if _, err := scanChanges(rows, MsgSending, c); err != nil {
			return err
		}
		return tallyChangesTx(ctx, tx, c, time.Now())
	}
	if s.pg {
		return s.retryPG(ctx, f)
	}
	return s.inWriterTx(ctx, f)
}

// JobStatus returns only a job's status: the sender checks it before each
// delivery so a pause or cancel also holds back messages already claimed.
func (s *Store) JobStatus(ctx context.Context, id int64) (string, error) {
	var st string
	q, err := s.readStmt(ctx, `SELECT status FROM jobs WHERE id = ?`)
	if err != nil {
		return "", fmt.Errorf("cannot read status of job %d: %w", id, err)
	}
	err = q.QueryRowContext(ctx, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("cannot read status of job %d: %w", id, err)
	}
	return st, nil
}

// completeOthersTx records the outcomes other than a delivery, one by one,
// tallies the status changes they made, and returns the retried and failed
// ones whose claim was current: their attempts are recorded next.
func completeOthersTx(ctx context.Context, tx *sql.Tx, other []Outcome) (attempts []Outcome, err error) {
	if len(other) == 0 {
		return nil, nil
	}
	c := changes{}
	for _, o := range other {
		ok, err := completeOneTx(ctx, tx, o, c)
		if err != nil {
			return nil, err
		}
		if ok && (o.Kind == OutcomeRetry || o.Kind == OutcomeFailed) {
			attempts = append(attempts, o)
		}
	}
	if err := tallyChangesTx(ctx, tx, c, time.Now()); err != nil {
		return nil, err
	}
	return attempts, nil
}
