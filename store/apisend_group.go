package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// A group commit of single sends used to run four statements per send (the
// job, its message, its message range, its tally), each through
// database/sql and the driver: most of a send's store time. Sends that
// carry no Idempotency-Key and a few messages are instead written together,
// three multi-row statements for the whole group (jobs, messages, tallies),
// with ids given explicitly: the next ones after the tables' largest,
// which is what SQLite would have chosen, known here before the insert so
// that each job is written with its message range.

// maxGroupedMessages is the most messages a send may have to be written
// with the group's statements; larger sends keep their own (the file jobs'
// shapes, which bind a chunk's shared values once).
const maxGroupedMessages = 4

// groupRowsMax is the most rows of one grouped statement; fewer go in
// powers of two (chunkSizes), so a few shapes stay prepared.
const groupRowsMax = 32

const (
	maxJobIDSQL     = `SELECT COALESCE(MAX(id), 0) FROM jobs`
	maxMessageIDSQL = `SELECT COALESCE(MAX(id), 0) FROM messages`
)

// groupTables are the grouped statements' columns, per table.
var groupTables = map[string][]string{
	"jobs": {"id", "partner", "source", "status", "priority", "total", "templates", "created_at", "first_message_id", "last_message_id"},
	"messages": {"id", "job_id", "channel", "line", "ref", "recipient", "subject", "body", "format", "sender", "vars",
		"status", "next_attempt_at", "expires_at", "updated_at"},
	"job_counts": {"job_id", "channel", "status", "n"},
}

type groupShape struct {
	table string
	rows  int
}

var groupSQL sync.Map // groupShape -> string

func (sh groupShape) sql() string {
	if q, ok := groupSQL.Load(sh); ok {
		return q.(string)
	}
	cols := groupTables[sh.table]
	q := "INSERT INTO " + sh.table + " (" + strings.Join(cols, ", ") + ") VALUES " + valuesList(sh.rows, len(cols))
	groupSQL.Store(sh, q)
	return q
}

// groupable reports whether a send is written with the group's statements.
func groupable(sd APISend) bool {
	return sd.Req.Key == "" && len(sd.Msgs) > 0 && len(sd.Msgs) <= maxGroupedMessages
}

// groupQueries are the statements insertGroupTx runs for these sends, for
// Store.prepare.
func groupQueries(sends []*smallJob) []string {
	jobs, msgs, counts := 0, 0, 0
	for _, sj := range sends {
		jobs++
		msgs += len(sj.msgs)
		counts += len(channelsOf(sj.msgs))
	}
	qs := []string{maxJobIDSQL, maxMessageIDSQL}
	for _, t := range []struct {
		table string
		n     int
	}{{"jobs", jobs}, {"messages", msgs}, {"job_counts", counts}} {
		for _, n := range uniqueSizes(chunkSizes(t.n, groupRowsMax)) {
			qs = append(qs, groupShape{t.table, n}.sql())
		}
	}
	return qs
}

func uniqueSizes(sizes []int) []int {
	var out []int
	for _, n := range sizes {
		if len(out) == 0 || out[len(out)-1] != n {
			out = append(out, n)
		}
	}
	return out
}

// channelsOf counts a send's messages per channel, in first-seen order.
func channelsOf(msgs []Message) []channelCount {
	var out []channelCount
next:
	for i := range msgs {
		for j := range out {
			if out[j].channel == msgs[i].Channel {
				out[j].n++
				continue next
			}
		}
		out = append(out, channelCount{msgs[i].Channel, 1})
	}
	return out
}

type channelCount struct {
	channel string
	n       int
}

// insertGroupTx writes sends (each groupable) in tx and returns each one's
// job id and message ids. Every statement must have been prepared
// (groupQueries).
func (s *Store) insertGroupTx(ctx context.Context, tx *sql.Tx, sends []*smallJob) ([]int64, [][]int64, error) {
	if s.pg {
		return s.insertJobsPg(ctx, tx, sends)
	}
	var jobID, msgID int64
	for _, r := range []struct {
		q  string
		id *int64
	}{{maxJobIDSQL, &jobID}, {maxMessageIDSQL, &msgID}} {
		st, err := s.txStmt(ctx, tx, r.q)
		if err != nil {
			return nil, nil, err
		}
		if err := st.QueryRowContext(ctx).Scan(r.id); err != nil {
			return nil, nil, fmt.Errorf("cannot read the largest id: %w", err)
		}
	}
	jobIDs := make([]int64, len(sends))
	msgIDs := make([][]int64, len(sends))
	var jobRows, msgRows, countRows [][]any
	for i, sj := range sends {
		jobID++
		jobIDs[i] = jobID
		ids := make([]int64, len(sj.msgs))
		for k := range sj.msgs {
			msgID++
			ids[k] = msgID
			m := &sj.msgs[k]
			v := messageValues(m, sj.now)
			msgRows = append(msgRows, []any{msgID, jobID, v.channel, m.Line, m.Ref, m.Recipient, v.subject, m.Body, v.format, v.sender, v.vars,
				MsgQueued, v.next, v.expires, ms(sj.now)})
		}
		msgIDs[i] = ids
		j := sj.job
		jobRows = append(jobRows, []any{jobID, j.Partner, j.Source, j.Status, j.Priority, j.Total, encodeTemplateRefs(j.Templates), ms(sj.now), ids[0], ids[len(ids)-1]})
		for _, c := range channelsOf(sj.msgs) {
			countRows = append(countRows, []any{jobID, c.channel, MsgQueued, c.n})
		}
	}
	for _, t := range []struct {
		table string
		rows  [][]any
	}{{"jobs", jobRows}, {"messages", msgRows}, {"job_counts", countRows}} {
		start := 0
		for _, n := range chunkSizes(len(t.rows), groupRowsMax) {
			st, err := s.txStmt(ctx, tx, groupShape{t.table, n}.sql())
			if err != nil {
				return nil, nil, err
			}
			args := make([]any, 0, n*len(t.rows[0]))
			for _, r := range t.rows[start : start+n] {
				args = append(args, r...)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return nil, nil, fmt.Errorf("cannot store a group of API sends (%s): %w", t.table, err)
			}
			start += n
		}
	}
	return jobIDs, msgIDs, nil
}
