package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// A batch of events is written with a few statements, not a few per
// event: one read of the ids already accepted, multi-row inserts of the
// new events and of the runs they start, and one read of the contacts'
// latest runs per workflow. Per event, statements were most of the cost
// of accepting it (workflow/BENCHMARKS.md).

const (
	// eventSeenSQL lists which of a partner's event ids are stored.
	eventSeenSQL = `SELECT event_id FROM events WHERE partner = ? AND event_id IN (SELECT value FROM json_each(?))`
	// runLatestBatchSQL reads the latest run of each of the contacts in a
	// workflow of a partner.
	runLatestBatchSQL = `SELECT contact, status, created_at FROM workflow_runs WHERE id IN (
		SELECT MAX(id) FROM workflow_runs WHERE partner = ? AND workflow = ? AND contact IN (SELECT value FROM json_each(?)) GROUP BY contact)`
	// batchRows is how many rows one multi-row insert writes.
	batchRows = 100
)

// runKey is a contact's runs of a workflow.
type runKey struct{ partner, contact, workflow string }

// latestRun is the newest run of a runKey: what reentry looks at.
type latestRun struct {
	status  string
	created int64
}

// pendingRun is a run a batch starts, written at the batch's end.
type pendingRun struct {
	event                            int // index in the batch
	partner, workflow, contact, key  string
	status                           string
	step                             int
	due, eventID, exitEvent, created int64
}

// freshEvents marks the events whose id the partner already sent (stored,
// or earlier in this batch) as duplicates, and returns the indexes of the
// others, in order.
func (s *Store) freshEvents(ctx context.Context, tx *sql.Tx, events []EventWrite, out []EventResult) ([]int, error) {
	byPartner := map[string][]string{}
	for i := range events {
		if e := &events[i].Event; e.EventID != "" {
			byPartner[e.Partner] = append(byPartner[e.Partner], e.EventID)
		}
	}
	seen := map[[2]string]bool{}
	if len(byPartner) > 0 {
		st, err := s.txStmt(ctx, tx, eventSeenSQL)
		if err != nil {
			return nil, err
		}
		for p, ids := range byPartner {
			list, _ := json.Marshal(ids)
			rows, err := st.QueryContext(ctx, p, string(list))
			if err != nil {
				return nil, fmt.Errorf("cannot look up event ids: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, err
				}
				seen[[2]string{p, id}] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	fresh := make([]int, 0, len(events))
	for i := range events {
		e := &events[i].Event
		if e.EventID != "" {
			k := [2]string{e.Partner, e.EventID}
			if seen[k] {
				out[i].Duplicate = true
				continue
			}
			seen[k] = true
		}
		fresh = append(fresh, i)
	}
	return fresh, nil
}

// insertEvents writes the fresh events and returns their ids, in order.
// None of them can conflict (freshEvents), so each statement's rows get
// consecutive ids ending at its last insert id.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, events []EventWrite, fresh []int, datas []string, now time.Time) ([]int64, error) {
	const cols = 11
	ids := make([]int64, 0, len(fresh))
	args := make([]any, 0, batchRows*cols)
	for start := 0; start < len(fresh); start += batchRows {
		end := min(start+batchRows, len(fresh))
		args = args[:0]
		for _, i := range fresh[start:end] {
			e := &events[i].Event
			occurred := e.OccurredAt
			if occurred.IsZero() {
				occurred = now
			}
			datas[i] = dataJSON(e.Data)
			args = append(args, e.Partner, e.EventID, e.Name, e.Email, e.Phone, e.Ref, e.Key, datas[i], e.Source, ms(occurred), ms(now))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO events (partner, event_id, name, email, phone, ref, key, data, source, occurred_at, received_at) VALUES `+
			valuesList(end-start, cols), args...)
		if err != nil {
			return nil, fmt.Errorf("cannot store events: %w", err)
		}
		last, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		for id := last - int64(end-start) + 1; id <= last; id++ {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// dataJSON encodes an event's data as stored.
func dataJSON(d map[string]string) string {
	if len(d) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(d) // a map of strings always encodes
	return string(b)
}

// latestRuns reads the latest stored run of every contact and workflow
// the fresh events may start.
func (s *Store) latestRuns(ctx context.Context, tx *sql.Tx, events []EventWrite, fresh []int) (map[runKey]latestRun, error) {
	type pw struct{ partner, workflow string }
	contacts := map[pw][]string{}
	for _, i := range fresh {
		e := &events[i].Event
		for _, rs := range events[i].Starts {
			k := pw{e.Partner, rs.Workflow}
			contacts[k] = append(contacts[k], e.Contact())
		}
	}
	out := map[runKey]latestRun{}
	if len(contacts) == 0 {
		return out, nil
	}
	st, err := s.txStmt(ctx, tx, runLatestBatchSQL)
	if err != nil {
		return nil, err
	}
	for k, cs := range contacts {
		list, _ := json.Marshal(cs)
		rows, err := st.QueryContext(ctx, k.partner, k.workflow, string(list))
		if err != nil {
			return nil, fmt.Errorf("cannot read the runs of %s: %w", k.workflow, err)
		}
		for rows.Next() {
			var contact string
			var l latestRun
			if err := rows.Scan(&contact, &l.status, &l.created); err != nil {
				rows.Close()
				return nil, err
			}
			out[runKey{k.partner, contact, k.workflow}] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertRuns writes the runs a batch started and records their ids in
// the results of the events that started them.
func (s *Store) insertRuns(ctx context.Context, tx *sql.Tx, events []EventWrite, runs []pendingRun, datas []string, out []EventResult, now time.Time) error {
	const cols = 15
	args := make([]any, 0, batchRows*cols)
	for start := 0; start < len(runs); start += batchRows {
		end := min(start+batchRows, len(runs))
		args = args[:0]
		for _, r := range runs[start:end] {
			e := &events[r.event].Event
			args = append(args, r.partner, r.workflow, r.contact, e.Email, e.Phone, e.Ref, r.key, datas[r.event], r.status, r.step, r.due,
				r.eventID, r.exitEvent, r.created, ms(now))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO workflow_runs (partner, workflow, contact, email, phone, ref, key, data, status, step, due_at,
			event_id, exit_event, created_at, updated_at) VALUES `+valuesList(end-start, cols), args...)
		if err != nil {
			return fmt.Errorf("cannot start runs: %w", err)
		}
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for j, r := range runs[start:end] {
			id := last - int64(end-start) + 1 + int64(j)
			out[r.event].Started = append(out[r.event].Started, id)
		}
	}
	return nil
}
