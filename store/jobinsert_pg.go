package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// On PostgreSQL a job's messages cannot take "the next rowids" as they do
// on SQLite (jobcreate.go, apisend_group.go): several nodes insert at once.
// Each insert into jobs or messages reserves its ids first (reserveIDs),
// then writes them explicitly, so a job still knows its messages' ids and
// range without reading them back, and none of its inserts can take an id
// another node reserved.

// reserveSQL is reserveIDs in one statement, its own transaction: the
// materialized CTE takes the lock reserveIDs takes before the sequence
// moves, and the statement's end releases it.
const reserveSQL = `WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(` + schemaLockKey + `))
	SELECT setval(pg_get_serial_sequence(?, 'id'), nextval(pg_get_serial_sequence(?, 'id')) + ? - 1) FROM l`

// reserve reserves n consecutive ids of table, as reserveIDs does, in a
// statement of its own on a reader connection (the writer's one
// connection may be in the transaction that needs them). Sequences are
// not transactional, so the range stays reserved (and is simply skipped
// if the writer's transaction then fails); the lock guarding the
// reservation is held for one statement, not for the whole of the
// writer's transaction, which other nodes' inserts would wait on.
func (s *Store) reserve(ctx context.Context, table string, n int) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	var last int64
	if err := s.reader.QueryRowContext(ctx, reserveSQL, table+".id", table, table, n).Scan(&last); err != nil {
		return 0, fmt.Errorf("cannot reserve %s ids: %w", table, err)
	}
	return last - int64(n) + 1, nil
}

const insertJobIDSQL = `INSERT INTO jobs (id, partner, source, file_id, file_name, status, priority, total, templates, created_at)
	VALUES (?, ?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?, ?)`

// insertJobPg is insertJob on PostgreSQL.
func (s *Store) insertJobPg(ctx context.Context, db execer, j Job, now time.Time) (int64, error) {
	id, err := s.reserve(ctx, "jobs", 1)
	if err != nil {
		return 0, fmt.Errorf("cannot create job: %w", err)
	}
	if _, err := db.ExecContext(ctx, insertJobIDSQL, id, j.Partner, j.Source, j.FileID, j.FileName, j.Status, j.Priority, j.Total,
		encodeTemplateRefs(j.Templates), ms(now)); err != nil {
		return 0, fmt.Errorf("cannot create job: %w", err)
	}
	return id, nil
}

// pgRowsMax is the most rows of one multi-row INSERT on PostgreSQL (a
// statement takes up to 65,535 parameters); fewer go in powers of two so
// that pgx's statement cache holds a few shapes.
const pgRowsMax = 1024

// pgJobTables are the columns insertJobsPg writes, per table.
var pgJobTables = map[string][]string{
	"jobs": {"id", "partner", "source", "file_id", "file_name", "status", "priority", "total", "templates", "created_at",
		"first_message_id", "last_message_id"},
	"messages": {"id", "job_id", "channel", "line", "ref", "recipient", "subject", "body", "format", "sender", "vars",
		"status", "next_attempt_at", "expires_at", "updated_at"},
	"job_counts": {"job_id", "channel", "status", "n"},
}

// insertJobsPg writes small jobs (API sends, workflow runs, CreateJob)
// with their messages and tallies in tx, on PostgreSQL, and returns each
// one's job id and message ids: a multi-row INSERT per table and up to
// pgRowsMax rows, with ids reserved first.
func (s *Store) insertJobsPg(ctx context.Context, tx *sql.Tx, sends []*smallJob) ([]int64, [][]int64, error) {
	n := 0
	for _, sj := range sends {
		n += len(sj.msgs)
	}
	jobID, err := s.reserve(ctx, "jobs", len(sends))
	if err != nil {
		return nil, nil, err
	}
	msgID, err := s.reserve(ctx, "messages", n)
	if err != nil {
		return nil, nil, err
	}
	jobIDs := make([]int64, len(sends))
	msgIDs := make([][]int64, len(sends))
	var jobRows, msgRows, countRows [][]any
	for i, sj := range sends {
		jobIDs[i] = jobID
		ids := make([]int64, len(sj.msgs))
		for k := range sj.msgs {
			ids[k] = msgID
			m := &sj.msgs[k]
			v := messageValues(m, sj.now)
			msgRows = append(msgRows, []any{msgID, jobID, v.channel, m.Line, m.Ref, m.Recipient, v.subject, m.Body, v.format, v.sender, v.vars,
				MsgQueued, v.next, v.expires, ms(sj.now)})
			msgID++
		}
		msgIDs[i] = ids
		var first, last int64
		if len(ids) > 0 {
			first, last = ids[0], ids[len(ids)-1]
		}
		j := sj.job
		var fileID any
		if j.FileID != 0 {
			fileID = j.FileID
		}
		jobRows = append(jobRows, []any{jobID, j.Partner, j.Source, fileID, j.FileName, j.Status, j.Priority, j.Total,
			encodeTemplateRefs(j.Templates), ms(sj.now), first, last})
		for _, c := range channelsOf(sj.msgs) {
			countRows = append(countRows, []any{jobID, c.channel, MsgQueued, c.n})
		}
		jobID++
	}
	for _, t := range []struct {
		table string
		rows  [][]any
	}{{"jobs", jobRows}, {"messages", msgRows}, {"job_counts", countRows}} {
		if err := insertRowsPg(ctx, tx, t.table, pgJobTables[t.table], t.rows); err != nil {
			return nil, nil, fmt.Errorf("cannot store jobs (%s): %w", t.table, err)
		}
	}
	return jobIDs, msgIDs, nil
}

// insertRowsPg inserts rows into table's cols with multi-row INSERTs.
func insertRowsPg(ctx context.Context, tx *sql.Tx, table string, cols []string, rows [][]any) error {
	start := 0
	for _, n := range chunkSizes(len(rows), pgRowsMax) {
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + valuesList(n, len(cols))
		args := make([]any, 0, n*len(cols))
		for _, r := range rows[start : start+n] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		start += n
	}
	return nil
}

// insertFileErrorsPg is insertFileErrors on PostgreSQL, where a statement
// per error would be a round trip per error (a skip_rows file may have
// many): multi-row INSERTs, in the errors' order.
func insertFileErrorsPg(ctx context.Context, tx *sql.Tx, fileID int64, errs []FileError) error {
	rows := make([][]any, len(errs))
	for i, e := range errs {
		rows[i] = []any{fileID, e.Line, e.Column, e.Value, e.Error}
	}
	if err := insertRowsPg(ctx, tx, "file_errors", []string{"file_id", "line", "col", "value", "error"}, rows); err != nil {
		return fmt.Errorf("cannot store file errors: %w", err)
	}
	return nil
}
