package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// RunnableJob is a job the sender may take messages from, with what the
// scheduler needs to order it and what its messages take from it.
type RunnableJob struct {
	ID        int64
	Partner   string
	Source    string
	Priority  int
	CreatedAt time.Time
	// Urgent is UrgentSource(Source): the sender claims and delivers this
	// job's messages ahead of any bulk work on the channel.
	Urgent bool
}

// UrgentSource says whether jobs of source are transactional: one
// recipient waiting on the other end (an API send, a workflow step), to be
// delivered ahead of bulk files however large. This is the one place that
// decides it.
func UrgentSource(source string) bool {
	switch source {
	case SourceAPI, SourceWorkflow:
		return true
	}
	return false
}

// RunnableJobs returns the queued or sending jobs that have at least one
// message due on channel at now, transactional first, then oldest first.
// It reads the small jobs table and probes messages_queue once per job, so
// a paused or ingesting job costs nothing however large it is.
func (s *Store) RunnableJobs(ctx context.Context, channel string, now time.Time) ([]RunnableJob, error) {
	st, err := s.readStmt(ctx, runnableJobsSQL)
	if err != nil {
		return nil, fmt.Errorf("cannot list runnable jobs: %w", err)
	}
	rows, err := st.QueryContext(ctx, JobQueued, JobSending, channel, ms(now))
	if err != nil {
		return nil, fmt.Errorf("cannot list runnable jobs: %w", err)
	}
	defer rows.Close()
	var out []RunnableJob
	for rows.Next() {
		var j RunnableJob
		var created int64
		if err := rows.Scan(&j.ID, &j.Partner, &j.Source, &j.Priority, &created); err != nil {
			return nil, fmt.Errorf("cannot list runnable jobs: %w", err)
		}
		j.CreatedAt, j.Urgent = fromMS(created), UrgentSource(j.Source)
		out = append(out, j)
	}
	return out, rows.Err()
}

const runnableJobsSQL = `SELECT j.id, j.partner, j.source, j.priority, j.created_at FROM jobs j
	WHERE j.status IN (?, ?) AND EXISTS (SELECT 1 FROM messages m
		WHERE m.job_id = j.id AND m.channel = ? AND m.status = 'queued' AND m.next_attempt_at <= ?)
	ORDER BY j.priority, j.id`

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

// ClaimMessages leases up to limit due messages of one job and channel;
// see ClaimFromJobs.
func (s *Store) ClaimMessages(ctx context.Context, jobID int64, channel string, now time.Time, lease time.Duration, limit int) ([]Claim, error) {
	j := RunnableJob{ID: jobID}
	var created int64
	err := s.reader.QueryRowContext(ctx, `SELECT partner, source, priority, created_at FROM jobs WHERE id = ?`, jobID).
		Scan(&j.Partner, &j.Source, &j.Priority, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages of job %d: %w", jobID, err)
	}
	j.CreatedAt, j.Urgent = fromMS(created), UrgentSource(j.Source)
	return s.ClaimFromJobs(ctx, []RunnableJob{j}, channel, now, lease, limit)
}

// ClaimFromJobs leases up to limit due messages of the given jobs on one
// channel for lease, the first job's first (by id, which is oldest first):
// they become "sending" with attempts+1. A job becomes "sending" (with
// started_at) on its first claim. Nothing is claimed from a job paused or
// cancelled in the meantime.
//
// Claiming across jobs is what keeps many small jobs fast: every API
// request is a job of its own, and a claim per job made a burst of 3,000
// one-message requests go out at about 150 a second.
//
// The candidates are read on the reader pool and only their ids go through
// the writer, in one short transaction that claims those still queued: a
// claim that also returned every column held the single writer about twice
// as long, and the writer is what the sender's workers and the outcomes
// they record wait for. One dispatcher claims per channel, so a candidate
// is lost only to a cancel or a release in between, which the write skips.
func (s *Store) ClaimFromJobs(ctx context.Context, jobs []RunnableJob, channel string, now time.Time, lease time.Duration, limit int) ([]Claim, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	if s.pg {
		return s.claimFromJobsPG(ctx, jobs, channel, now, lease, limit)
	}
	byID := make(map[int64]*RunnableJob, len(jobs))
	jobIDs := make([]int64, len(jobs))
	for i := range jobs {
		byID[jobs[i].ID] = &jobs[i]
		jobIDs[i] = jobs[i].ID
	}
	jobList := idList(jobIDs)
	cands, err := s.candidates(ctx, jobList, channel, now, limit)
	if err != nil {
		return nil, err
	}
	for i := range cands {
		c := &cands[i]
		j := byID[c.JobID]
		c.Partner, c.Priority, c.CreatedAt, c.Status = j.Partner, j.Priority, j.CreatedAt, MsgQueued
		if c.AgeFrom.IsZero() {
			c.AgeFrom = j.CreatedAt
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(cands))
	for i := range cands {
		ids[i] = cands[i].ID
	}
	if err := s.prepare(ctx, append([]string{claimSQL, startJobsSQL}, tallySQLs...)...); err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	release, err := s.lockWriter(ctx, jobs[0].Urgent)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	defer release()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	defer tx.Rollback()
	claim, err := s.txStmt(ctx, tx, claimSQL)
	if err != nil {
		return nil, err
	}
	leaseUntil := ms(now.Add(lease))
	res, err := claim.QueryContext(ctx, leaseUntil, ms(now), idList(ids), jobList, JobQueued, JobSending)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	claimed := make(map[int64]bool, len(ids))
	var started []int64 // the jobs claimed from, each once
	moved := moves{}
	for res.Next() {
		var id, jobID int64
		if err := res.Scan(&id, &jobID); err != nil {
			res.Close()
			return nil, fmt.Errorf("cannot claim messages: %w", err)
		}
		if _, ok := moved[tallyKey{jobID, channel}]; !ok {
			started = append(started, jobID)
		}
		moved.add(jobID, channel)
		claimed[id] = true
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	if err := s.tallyMovesTx(ctx, tx, moved, MsgQueued, MsgSending, now); err != nil {
		return nil, err
	}
	if len(started) > 0 {
		start, err := s.txStmt(ctx, tx, startJobsSQL)
		if err != nil {
			return nil, err
		}
		if _, err := start.ExecContext(ctx, JobSending, ms(now), idList(started), JobQueued); err != nil {
			return nil, fmt.Errorf("cannot mark jobs sending: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	out := cands[:0]
	for _, c := range cands {
		if !claimed[c.ID] {
			continue
		}
		// As the write left it: a queued message's attempts cannot change
		// between the read and the claim.
		c.Status, c.Attempts, c.LeaseUntil = MsgSending, c.Attempts+1, fromMS(leaseUntil)
		c.Attempt = c.Attempts
		out = append(out, c)
	}
	return out, nil
}

// candidates reads up to limit due messages of the listed jobs on channel
// (candidatesSQL) through SQLite's C API (claim_raw.go).
func (s *Store) candidates(ctx context.Context, jobList, channel string, now time.Time, limit int) ([]Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	c, err := s.claimRaw.take(s.path)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	cands, err := c.candidates(s, jobList, channel, ms(now), int64(limit), make([]Claim, 0, min(limit, 1024)))
	s.claimRaw.put(c)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	return cands, nil
}

// candidatesPool is candidates through database/sql on the reader pool,
// as claims read them before claim_raw.go; the test of the raw read
// compares the two.
func (s *Store) candidatesPool(ctx context.Context, jobList, channel string, now time.Time, limit int) ([]Claim, error) {
	cands := make([]Claim, 0, min(limit, 1024))
	// ORDER BY job_id, next_attempt_at, id is messages_queue's own order
	// after its two equalities: no sort, and the walk stops at limit.
	cst, err := s.readStmt(ctx, candidatesSQL)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	rows, err := cst.QueryContext(ctx, jobList, channel, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Claim
		if err := s.scanClaim(rows, &c); err != nil {
			return nil, fmt.Errorf("cannot read due message: %w", err)
		}
		cands = append(cands, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot claim messages: %w", err)
	}
	return cands, nil
}

// claimSQL claims the listed messages that are still queued and whose job
// is still queued or sending; the job list is materialised once, not
// looked up per message. The claim tallies what it moved itself
// (tallyMovesTx; no trigger counts queued -> sending, migration 0016).
const claimSQL = `UPDATE messages SET status = 'sending', lease_until = ?, attempts = attempts + 1, updated_at = ?
	WHERE id IN (SELECT value FROM json_each(?)) AND status = 'queued'
	AND job_id IN (SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND status IN (?, ?))
	RETURNING id, job_id`

// startJobsSQL marks the listed queued jobs sending, from their first
// claim.
const startJobsSQL = `UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?)
	WHERE id IN (SELECT value FROM json_each(?)) AND status = ?`

// candidatesSQL reads the due messages of the listed jobs on one channel.
const candidatesSQL = `SELECT job_id, ` + claimColumns + ` FROM messages
	WHERE job_id IN (SELECT value FROM json_each(?)) AND status = 'queued' AND channel = ? AND next_attempt_at <= ?
	ORDER BY job_id, next_attempt_at, id LIMIT ?`

// claimColumns are the message columns a delivery needs, after job_id. The
// job's partner, priority and creation time come from the RunnableJob; a
// message's max-age window starts when its job was created (a file's
// messages are written while it is read, within seconds of that), or at
// its age_from.
const claimColumns = `id, channel, line, ref, recipient, subject, body, format, sender, vars, attempts, expires_at, age_from`

// scanClaim reads job_id and claimColumns into c.
func (s *Store) scanClaim(rows *sql.Rows, c *Claim) error {
	var vars string
	var expires, ageFrom int64
	if err := rows.Scan(&c.JobID, &c.ID, &c.Channel, &c.Line, &c.Ref, &c.Recipient, &c.Subject, &c.Body, &c.Format, &c.Sender, &vars,
		&c.Attempts, &expires, &ageFrom); err != nil {
		return err
	}
	if vars != "" && vars != "{}" {
		if err := json.Unmarshal([]byte(vars), &c.Vars); err != nil {
			return fmt.Errorf("message %d: bad vars: %w", c.ID, err)
		}
	}
	c.Key = s.MessageKey(c.ID)
	c.ExpiresAt = fromMS(expires)
	if ageFrom > 0 {
		c.AgeFrom = fromMS(ageFrom)
	}
	return nil
}

// idList is ids as a JSON array, for json_each: one bound value however
// many ids.
func idList(ids []int64) string {
	b := make([]byte, 0, 8*len(ids)+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
