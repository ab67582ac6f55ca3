package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

const jobColumns = `id, partner, source, COALESCE(file_id, 0), file_name, status, priority, total, templates, created_at, started_at, finished_at, reported_at`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var created int64
	var templates string
	var started, finished, reported sql.NullInt64
	err := row.Scan(&j.ID, &j.Partner, &j.Source, &j.FileID, &j.FileName, &j.Status, &j.Priority, &j.Total, &templates,
		&created, &started, &finished, &reported)
	j.CreatedAt, j.StartedAt, j.FinishedAt, j.ReportedAt = fromMS(created), nullMS(started), nullMS(finished), nullMS(reported)
	j.Templates = decodeTemplateRefs(templates)
	return j, err
}

// TemplateRef names one version of a template a job's messages were
// rendered from.
type TemplateRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// String is the ref as the console shows it: otp v3.
func (r TemplateRef) String() string { return r.Name + " v" + strconv.Itoa(r.Version) }

// encodeTemplateRefs is the jobs.templates column (migration 0032):
// "name@version" entries separated by spaces; template names hold neither.
func encodeTemplateRefs(refs []TemplateRef) string {
	var b strings.Builder
	for i, r := range refs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.Name)
		b.WriteByte('@')
		b.WriteString(strconv.Itoa(r.Version))
	}
	return b.String()
}

// decodeTemplateRefs reads the jobs.templates column; nil for ”.
func decodeTemplateRefs(s string) []TemplateRef {
	if s == "" {
		return nil
	}
	var refs []TemplateRef
	for _, f := range strings.Fields(s) {
		name, v, _ := strings.Cut(f, "@")
		n, _ := strconv.Atoi(v)
		refs = append(refs, TemplateRef{Name: name, Version: n})
	}
	return refs
}

// SetJobTemplates records the template versions a job's messages were
// rendered from. A file job calls it before its commit, once it knows
// which templates its rows named.
func (s *Store) SetJobTemplates(ctx context.Context, jobID int64, refs []TemplateRef) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE jobs SET templates = ? WHERE id = ?`, encodeTemplateRefs(refs), jobID); err != nil {
		return fmt.Errorf("cannot record the templates of job %d: %w", jobID, err)
	}
	return nil
}

// Job returns one job with its counts per message status.
func (s *Store) Job(ctx context.Context, id int64) (Job, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return Job{}, err
	}
	defer tx.Rollback()
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, err
	}
	j.Counts, err = jobCounts(ctx, tx, j)
	return j, err
}

// JobCounts counts a job's messages per status.
func (s *Store) JobCounts(ctx context.Context, id int64) (map[string]int, error) {
	j, err := s.Job(ctx, id)
	return j.Counts, err
}

// readQuery runs q on the reader pool as a statement prepared once (the
// console's and /metrics's reads: parsing their SQL on every request was
// a seventh of a page's time).
func (s *Store) readQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.stmt(ctx, s.reader, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// readTxStmts prepares qs on the reader pool, then begins a read
// transaction (readTx) and returns the statements bound to it. Preparing
// first matters: a statement prepared while the transaction holds a
// connection would wait for another.
func (s *Store) readTxStmts(ctx context.Context, qs ...string) (*sql.Tx, []*sql.Stmt, error) {
	prepared := make([]*sql.Stmt, len(qs))
	for i, q := range qs {
		st, err := s.stmts.stmt(ctx, s.reader, q)
		if err != nil {
			return nil, nil, err
		}
		prepared[i] = st
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i, st := range prepared {
		prepared[i] = tx.StmtContext(ctx, st)
	}
	return tx, prepared, nil
}

// readTx begins a read-only transaction on the reader pool: the reads in
// it see one snapshot of the database.
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("cannot begin read: %w", err)
	}
	return tx, nil
}

// jobCounts reads a job's messages per status from the live tally
// (job_counts, migration 0012): a few rows, whatever the job's size. A job
// still ingesting has no tally yet (its rows are counted once, when it is
// queued), so its rows so far are counted here: one job, bounded by its
// file, and only while it is read into the database.
func jobCounts(ctx context.Context, tx *sql.Tx, j Job) (map[string]int, error) {
	q := `SELECT status, SUM(n) FROM job_counts WHERE job_id = ? AND n <> 0 GROUP BY status`
	if j.Status == JobIngesting {
		q = `SELECT status, COUNT(*) FROM messages WHERE job_id = ? GROUP BY status`
	}
	rows, err := tx.QueryContext(ctx, q, j.ID)
	if err != nil {
		return nil, fmt.Errorf("cannot count messages of job %d: %w", j.ID, err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		counts[st] = n
	}
	return counts, rows.Err()
}

// JobFilter selects jobs for ListJobs; empty fields match all.
type JobFilter struct {
	Partner  string
	Status   string
	Source   string
	BeforeID int64
	Limit    int
}

// ListJobs returns jobs, newest first, with their counts.
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.BeforeID <= 0 {
		f.BeforeID = 1 << 62
	}
	tx, st, err := s.readTxStmts(ctx, listJobsSQL, listCountsSQL, listCountsRangeSQL)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := st[0].QueryContext(ctx, f.Partner, f.Partner, f.Status, f.Status, f.Source, f.Source, f.BeforeID, f.Limit)
	if err != nil {
		return nil, err
	}
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, listCounts(ctx, st[1], st[2], out)
}

const (
	listJobsSQL = `SELECT ` + jobColumns + ` FROM jobs
		WHERE (? = '' OR partner = ?) AND (? = '' OR status = ?) AND (? = '' OR source = ?) AND id < ?
		ORDER BY id DESC LIMIT ?`
	listCountsSQL = `SELECT job_id, status, SUM(n) FROM job_counts
		WHERE job_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) AND n <> 0 GROUP BY job_id, status`
	listCountsRangeSQL = `SELECT job_id, status, SUM(n) FROM job_counts
		WHERE job_id BETWEEN ? AND ? AND n <> 0 GROUP BY job_id, status`
)

// listCounts fills the counts of a page of jobs with one read of their
// tallies: byIDs (listCountsSQL) names the page's jobs; byRange
// (listCountsRangeSQL) reads the range from the page's oldest job to its
// newest, for a page whose jobs are most of their range (an unfiltered
// page is all of it): a range scan of the tally's primary key, without
// building a list of ids, cost half as much.
func listCounts(ctx context.Context, byIDs, byRange *sql.Stmt, jobs []Job) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]int64, len(jobs))
	at := make(map[int64]int, len(jobs))
	for i := range jobs {
		ids[i], at[jobs[i].ID] = jobs[i].ID, i
		jobs[i].Counts = map[string]int{}
	}
	lo, hi := slices.Min(ids), slices.Max(ids)
	var rows *sql.Rows
	var err error
	if hi-lo < 2*int64(len(ids)) {
		rows, err = byRange.QueryContext(ctx, lo, hi)
	} else {
		b, _ := json.Marshal(ids)
		rows, err = byIDs.QueryContext(ctx, string(b))
	}
	if err != nil {
		return fmt.Errorf("cannot read job counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var st string
		var n int
		if err := rows.Scan(&id, &st, &n); err != nil {
			return err
		}
		if i, ok := at[id]; ok { // a range may hold jobs the page filtered out
			jobs[i].Counts[st] = n
		}
	}
	return rows.Err()
}

// MarkJobReported records that the job's result report was written.
func (s *Store) MarkJobReported(ctx context.Context, id int64) error {
	_, err := s.writer.ExecContext(ctx, `UPDATE jobs SET reported_at = ? WHERE id = ?`, ms(time.Now()), id)
	return err
}

// messageColumns are a message's columns in scanMessage's order, read
// FROM messageTables: a message's partner, priority and created_at are its
// job's (migration 0005).
const messageColumns = `m.id, m.job_id, j.partner, m.channel, j.priority, m.line, m.ref, m.recipient, m.subject, m.body, m.format, m.sender, m.vars,
	m.status, m.attempts, m.next_attempt_at, m.lease_until, m.expires_at, m.provider_id, m.last_error, m.sent_at, j.created_at`

// messageTables joins each message to its job.
const messageTables = `messages m JOIN jobs j ON j.id = m.job_id`

func (s *Store) scanMessage(row interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var vars string
	var next, lease, expires, created int64
	var sent sql.NullInt64
	err := row.Scan(&m.ID, &m.JobID, &m.Partner, &m.Channel, &m.Priority, &m.Line, &m.Ref, &m.Recipient, &m.Subject, &m.Body,
		&m.Format, &m.Sender, &vars, &m.Status, &m.Attempts, &next, &lease, &expires, &m.ProviderID, &m.LastError, &sent, &created)
	if err != nil {
		return m, err
	}
	if vars != "" && vars != "{}" {
		json.Unmarshal([]byte(vars), &m.Vars)
	}
	m.Key = s.MessageKey(m.ID)
	m.NextAttemptAt, m.LeaseUntil, m.ExpiresAt = fromMS(next), fromMS(lease), fromMS(expires)
	m.SentAt, m.CreatedAt = nullMS(sent), fromMS(created)
	return m, nil
}

// Message returns one message.
func (s *Store) Message(ctx context.Context, id int64) (Message, error) {
	m, err := s.scanMessage(s.reader.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM `+messageTables+` WHERE m.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	return m, err
}

// JobMessages calls fn for each message of a job in line/id order, with an
// optional status filter; it streams, so a million-row job is fine.
func (s *Store) JobMessages(ctx context.Context, jobID int64, status string, afterID int64, limit int, fn func(Message) error) error {
	if limit <= 0 {
		limit = 1 << 62 // no limit (SQLite's -1 is an error on PostgreSQL)
	}
	var first, last int64
	err := s.reader.QueryRowContext(ctx, `SELECT first_message_id, last_message_id FROM jobs WHERE id = ?`, jobID).Scan(&first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read job %d: %w", jobID, err)
	}
	var rows *sql.Rows
	if last > 0 {
		// A walk of the table over the job's id range, in id order, that
		// stops after limit rows (migration 0008). +m.job_id keeps the
		// planner off messages_queue, which would read the whole job and
		// sort it.
		rows, err = s.reader.QueryContext(ctx, `SELECT `+messageColumns+` FROM `+messageTables+`
			WHERE m.id > ? AND m.id <= ? AND +m.job_id = ? AND (? = '' OR m.status = ?) ORDER BY m.id LIMIT ?`,
			max(afterID, first-1), last, jobID, status, status, limit)
	} else {
		// No range yet: a file job still being ingested (its range is
		// stored when it is queued), or a job without messages.
		rows, err = s.reader.QueryContext(ctx, `SELECT `+messageColumns+` FROM `+messageTables+`
			WHERE m.job_id = ? AND (? = '' OR m.status = ?) AND m.id > ? ORDER BY m.id LIMIT ?`, jobID, status, status, afterID, limit)
	}
	if err != nil {
		return fmt.Errorf("cannot list messages of job %d: %w", jobID, err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := s.scanMessage(rows)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rows.Err()
}
