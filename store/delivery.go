package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RunnableJob is a job the sender may take messages from, with what the
// scheduler needs to order it.
type RunnableJob struct {
	ID       int64
	Partner  string
	Priority int
}

// RunnableJobs returns the queued or sending jobs that have at least one
// message due on channel at now, transactional first, then oldest first.
// It reads the small jobs table and probes the messages_due index once per
// job, so a paused or ingesting job costs nothing however large it is.
func (s *Store) RunnableJobs(ctx context.Context, channel string, now time.Time) ([]RunnableJob, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT j.id, j.partner, j.priority FROM jobs j
		WHERE j.status IN (?, ?) AND EXISTS (SELECT 1 FROM messages m
			WHERE m.job_id = j.id AND m.channel = ? AND m.status = 'queued' AND m.next_attempt_at <= ?)
		ORDER BY j.priority, j.id`, JobQueued, JobSending, channel, ms(now))
	if err != nil {
		return nil, fmt.Errorf("cannot list runnable jobs: %w", err)
	}
	defer rows.Close()
	var out []RunnableJob
	for rows.Next() {
		var j RunnableJob
		if err := rows.Scan(&j.ID, &j.Partner, &j.Priority); err != nil {
			return nil, fmt.Errorf("cannot list runnable jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Claim is a message leased to the sender for one delivery attempt.
type Claim struct {
	Message
	// Attempt is the attempt number this lease is for (Message.Attempts after
	// the claim); completing or releasing the claim checks it, so a stale
	// worker can never overwrite a later attempt.
	Attempt int
	// AgeFrom is when the message's max-age window started: its creation, or
	// the last admin retry.
	AgeFrom time.Time
}

// ClaimMessages leases up to limit due messages of one job and channel for
// lease, in one short transaction: they become "sending" with attempts+1.
// The job becomes "sending" (with started_at) on its first claim. Nothing
// is claimed when the job was paused or cancelled in the meantime.
func (s *Store) ClaimMessages(ctx context.Context, jobID int64, channel string, now time.Time, lease time.Duration, limit int) ([]Claim, error) {
	if err := s.prepare(ctx, messageJobSQL, claimSQL); err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	defer tx.Rollback()
	job, err := s.messageJobTx(ctx, tx, jobID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages of job %d: %w", jobID, err)
	}
	claim, err := s.txStmt(ctx, tx, claimSQL)
	if err != nil {
		return nil, err
	}
	rows, err := claim.QueryContext(ctx, ms(now.Add(lease)), ms(now), jobID, channel, ms(now), limit, jobID, JobQueued, JobSending)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages of job %d: %w", jobID, err)
	}
	var out []Claim
	for rows.Next() {
		var c Claim
		var ageFrom int64
		c.Message, err = s.scanMessage(extraScanner{rows, []any{&ageFrom}})
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read claimed message: %w", err)
		}
		job.fill(&c.Message)
		c.Attempt = c.Attempts
		c.AgeFrom = c.CreatedAt
		if ageFrom > 0 {
			c.AgeFrom = fromMS(ageFrom)
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot claim messages of job %d: %w", jobID, err)
	}
	if len(out) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?) WHERE id = ? AND status = ?`,
			JobSending, ms(now), jobID, JobQueued); err != nil {
			return nil, fmt.Errorf("cannot mark job %d sending: %w", jobID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot claim messages of job %d: %w", jobID, err)
	}
	return out, nil
}

const claimSQL = `UPDATE messages SET status = 'sending', lease_until = ?, attempts = attempts + 1, updated_at = ?
	WHERE id IN (SELECT id FROM messages WHERE job_id = ? AND channel = ? AND status = 'queued' AND next_attempt_at <= ?
		ORDER BY next_attempt_at, id LIMIT ?)
	AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND status IN (?, ?))
	RETURNING ` + returnedMessageColumns + `, age_from`

// extraScanner scans a row whose columns are the usual ones plus extra
// trailing ones, so scanMessage can be reused on RETURNING rows.
type extraScanner struct {
	rows  *sql.Rows
	extra []any
}

// Scan scans the row into dest followed by the extra destinations.
func (e extraScanner) Scan(dest ...any) error { return e.rows.Scan(append(dest, e.extra...)...) }

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

// CompleteMessages records a batch of outcomes, durably, and ignores an
// outcome whose claim is stale (the lease expired and the message was claimed
// again). It is the sender's per-commit cost, so it writes only what makes
// each outcome durable:
//
//   - A sent message gets its sent_at and provider_id, which no index
//     covers, so the write touches the table's pages only; it stays
//     "sending" (delivered, not settled) until SettleDeliveries moves it,
//     with its index entries, to "sent" in a larger batch. A delivered
//     message is never queued again: RequeueExpiredLeases settles it
//     instead, so a crash between the two costs nothing.
//   - Only retried and failed attempts get an attempts row; the successful
//     one lives in the message row and MessageAttempts adds it back.
//   - Jobs are not finished here: the sender calls FinishJob once a job has
//     nothing left in flight.
//
// A batch of sent outcomes only, nearly every batch of a healthy run, is one
// multi-row UPDATE in SQLite's implicit transaction: no BEGIN or COMMIT
// statement. Anything else runs in one explicit transaction.
func (s *Store) CompleteMessages(ctx context.Context, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	sent, other := outs, []Outcome(nil)
	if slices.ContainsFunc(outs, func(o Outcome) bool { return o.Kind != OutcomeSent }) {
		sent = nil
		for _, o := range outs {
			if o.Kind == OutcomeSent {
				sent = append(sent, o)
			} else {
				other = append(other, o)
			}
		}
	}
	if len(other) == 0 && len(sent) <= exactShapes {
		st, err := s.stmts.stmt(ctx, s.writer, completeSentSQL(len(sent)))
		if err != nil {
			return fmt.Errorf("cannot record deliveries: %w", err)
		}
		if _, err := st.ExecContext(ctx, completeSentArgs(sent)...); err != nil {
			return fmt.Errorf("cannot record %d deliveries: %w", len(sent), err)
		}
		return nil
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
	if err := s.prepare(ctx, qs...); err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot record deliveries: %w", err)
	}
	defer tx.Rollback()
	for _, n := range sizes {
		st, err := s.txStmt(ctx, tx, completeSentSQL(n))
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, completeSentArgs(sent[:n])...); err != nil {
			return fmt.Errorf("cannot record %d deliveries: %w", n, err)
		}
		sent = sent[n:]
	}
	var attempts []Outcome // retried and failed outcomes whose claim was current
	for _, o := range other {
		ok, err := completeOneTx(ctx, tx, o)
		if err != nil {
			return err
		}
		if ok && (o.Kind == OutcomeRetry || o.Kind == OutcomeFailed) {
			attempts = append(attempts, o)
		}
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

// exactShapes: a batch of up to this many sent outcomes gets a statement of
// its exact size. The sender's batches are at most its total concurrency;
// larger ones are cut into powers of two.
const exactShapes = 64

// claimGuard makes an outcome apply only to the claim it belongs to.
const claimGuard = ` AND status = 'sending' AND attempts = `

// completeSentSQLs and insertAttemptsSQLs hold, by row count, the text of
// every multi-row statement CompleteMessages may run, built once (the
// statement cache is keyed by text).
var completeSentSQLs, insertAttemptsSQLs = func() (sent, attempts map[int]string) {
	sent, attempts = map[int]string{}, map[int]string{}
	for n := 1; n <= completeChunk; n++ {
		if n == 1 { // no VALUES table to build: the most common round
			sent[n] = `UPDATE messages SET provider_id = ?3, sent_at = ?4, updated_at = ?4
		WHERE id = ?1 AND status = 'sending' AND attempts = ?2 AND sent_at IS NULL`
		} else if n <= exactShapes || n&(n-1) == 0 {
			sent[n] = `UPDATE messages SET provider_id = v.column3, sent_at = v.column4, updated_at = v.column4
		FROM (VALUES ` + valuesList(n, 4) + `) AS v
		WHERE messages.id = v.column1 AND messages.status = 'sending' AND messages.attempts = v.column2
			AND messages.sent_at IS NULL`
		}
		if n&(n-1) == 0 {
			attempts[n] = `INSERT INTO attempts (message_id, attempt, at, outcome, error)
		SELECT v.column1, COALESCE((SELECT MAX(a.attempt) FROM attempts a WHERE a.message_id = v.column1), 0) + 1,
			v.column2, v.column3, v.column4
		FROM (VALUES ` + valuesList(n, 4) + `) AS v`
		}
	}
	return sent, attempts
}()

// completeSentSQL marks n messages delivered (n up to exactShapes, or a
// power of two up to completeChunk); a stale claim matches no row.
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

// completeOneTx applies one outcome other than sent and reports whether
// its claim was current.
func completeOneTx(ctx context.Context, tx *sql.Tx, o Outcome) (bool, error) {
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
	res, err := tx.ExecContext(ctx, q+` WHERE id = ?`+claimGuard+`?`, append(args, o.ID, o.Attempt)...)
	if err != nil {
		return false, fmt.Errorf("cannot record delivery of message %d: %w", o.ID, err)
	}
	n, _ := res.RowsAffected()
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
	if _, err := tx.ExecContext(ctx, finishJobSQL, finishJobArgs(jobID, now)...); err != nil {
		return fmt.Errorf("cannot finish job %d: %w", jobID, err)
	}
	return nil
}

const finishJobSQL = `UPDATE jobs SET status = CASE WHEN status = ? THEN status ELSE ? END, finished_at = ?
	WHERE id = ? AND (status IN (?, ?) OR (status = ? AND finished_at IS NULL))
	AND NOT EXISTS (SELECT 1 FROM messages WHERE job_id = ? AND status IN ('queued', 'sending'))`

func finishJobArgs(jobID int64, now time.Time) []any {
	return []any{JobCancelled, JobDone, ms(now), jobID, JobQueued, JobSending, JobCancelled, jobID}
}

// FinishJob marks a queued or sending job done when none of its messages is
// queued or sending any more (a cancelled one gets its finished_at), and
// reports whether it did. It is one index probe when the job is not over: the
// sender calls it whenever a job it delivered for has nothing left in flight.
func (s *Store) FinishJob(ctx context.Context, jobID int64) (bool, error) {
	st, err := s.stmts.stmt(ctx, s.writer, finishJobSQL)
	if err != nil {
		return false, fmt.Errorf("cannot finish job %d: %w", jobID, err)
	}
	res, err := st.ExecContext(ctx, finishJobArgs(jobID, time.Now())...)
	if err != nil {
		return false, fmt.Errorf("cannot finish job %d: %w", jobID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
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

// SettleDeliveries moves delivered messages (see CompleteMessages) from
// "sending" to "sent", in one transaction; ids that are not delivered and
// unsettled are skipped.
func (s *Store) SettleDeliveries(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	st, err := s.stmts.stmt(ctx, s.writer, settleSQL)
	if err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	list := make([]byte, 0, 8*len(ids)+2)
	list = append(list, '[')
	for i, id := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, id, 10)
	}
	list = append(list, ']')
	if _, err := st.ExecContext(ctx, string(list)); err != nil {
		return fmt.Errorf("cannot settle %d deliveries: %w", len(ids), err)
	}
	return nil
}

const settleSQL = `UPDATE messages SET status = 'sent', lease_until = 0, last_error = ''
	WHERE id IN (SELECT value FROM json_each(?)) AND status = 'sending' AND sent_at IS NOT NULL`

// RequeueExpiredLeases returns every message whose lease ended before now
// (its sender crashed or hung) to the queue, due at once, and returns how
// many. The attempt stays counted: the provider may have seen it. A message
// whose delivery was recorded but not settled is settled as sent instead:
// the provider has it.
func (s *Store) RequeueExpiredLeases(ctx context.Context, now time.Time) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'sent', lease_until = 0, last_error = ''
		WHERE status = 'sending' AND lease_until < ? AND sent_at IS NOT NULL`, ms(now)); err != nil {
		return 0, fmt.Errorf("cannot settle deliveries: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE messages SET status = `+requeuedStatus+`, lease_until = 0, next_attempt_at = ?, updated_at = ?
		WHERE status = 'sending' AND lease_until < ?`, ms(now), ms(now), ms(now))
	if err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot requeue expired leases: %w", err)
	}
	return n, nil
}

// SettleAllDeliveries settles every delivered message however long its
// lease (a previous run's, after a crash); the sender runs it at start.
func (s *Store) SettleAllDeliveries(ctx context.Context) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE messages SET status = 'sent', lease_until = 0, last_error = ''
		WHERE status = 'sending' AND lease_until >= 0 AND sent_at IS NOT NULL`); err != nil {
		return fmt.Errorf("cannot settle deliveries: %w", err)
	}
	return nil
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
		if _, err := s.writer.ExecContext(ctx, `UPDATE messages SET status = `+requeuedStatus+`, attempts = attempts - 1, lease_until = 0,
			next_attempt_at = ?, updated_at = ? WHERE status = 'sending' AND sent_at IS NULL AND (`+sb.String()+`)`, args...); err != nil {
			return fmt.Errorf("cannot release %d messages: %w", len(batch), err)
		}
	}
	return nil
}

// JobStatus returns only a job's status: the sender checks it before each
// delivery so a pause or cancel also holds back messages already claimed.
func (s *Store) JobStatus(ctx context.Context, id int64) (string, error) {
	var st string
	err := s.reader.QueryRowContext(ctx, `SELECT status FROM jobs WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("cannot read status of job %d: %w", id, err)
	}
	return st, nil
}
