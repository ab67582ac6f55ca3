package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one thing a contact did, sent by a partner through the API or
// an events/*.csv drop.
type Event struct {
	ID         int64             `json:"id"`
	Partner    string            `json:"partner"`
	EventID    string            `json:"event_id,omitempty"`
	Name       string            `json:"event"`
	Email      string            `json:"email,omitempty"`
	Phone      string            `json:"phone,omitempty"`
	Ref        string            `json:"ref,omitempty"`
	Key        string            `json:"key,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	Source     string            `json:"source"`
	OccurredAt time.Time         `json:"occurred_at"`
	ReceivedAt time.Time         `json:"received_at"`
}

// Event sources.
const (
	EventFromAPI  = "api"
	EventFromFile = "file"
)

// Contact is the text that identifies an event's or a run's contact, for
// exit events and reentry: its email, else its phone, else its ref.
func (e *Event) Contact() string {
	switch {
	case e.Email != "":
		return "email:" + e.Email
	case e.Phone != "":
		return "phone:" + e.Phone
	}
	return "ref:" + e.Ref
}

// RunStart is a run an accepted event starts: its workflow, the step it
// waits at and when that step is due. Reentry is how long after the
// contact's last run of the workflow started a new one may start (0: as
// soon as no run is waiting; negative: never again).
type RunStart struct {
	Workflow string
	Step     int
	DueAt    time.Time
	Status   string // RunWaiting, or RunDone for a workflow with no step left
	Reentry  time.Duration
}

// EventWrite is one event to store with what it does: the runs it starts
// and the workflows whose waiting runs of the same contact (and key, when
// both carry one) it cancels.
type EventWrite struct {
	Event  Event
	Exits  []string
	Starts []RunStart
}

// EventResult is what became of one EventWrite: the stored event id (0 for
// a repeat), whether it was a repeat, the runs started and cancelled.
type EventResult struct {
	ID        int64   `json:"id,omitempty"`
	Duplicate bool    `json:"duplicate,omitempty"`
	Started   []int64 `json:"runs_started,omitempty"`
	Cancelled int     `json:"runs_cancelled,omitempty"`
}

const (
	// Exit: a waiting run of the contact is cancelled when the two keys
	// match or either is missing.
	runExitSQL = `UPDATE workflow_runs SET status = 'cancelled', exit_event = ?, updated_at = ?
		WHERE partner = ? AND contact = ? AND workflow = ? AND status = 'waiting' AND (key = '' OR ? = '' OR key = ?)`
	runLatestSQL = `SELECT status, created_at FROM workflow_runs WHERE partner = ? AND contact = ? AND workflow = ?
		ORDER BY id DESC LIMIT 1`
	// On SQLite both find the contact's runs by its key (keyhash.go), the
	// text compared on the rows.
	runExitSQLite = `UPDATE workflow_runs SET status = 'cancelled', exit_event = ?, updated_at = ?
		WHERE id IN (` + runsOfKeySQL + `) AND partner = ? AND contact = ? AND workflow = ? AND status = 'waiting' AND (key = '' OR ? = '' OR key = ?)`
	runLatestSQLite = `SELECT status, created_at FROM workflow_runs WHERE id IN (` + runsOfKeySQL + `) AND partner = ? AND contact = ? AND workflow = ?
		ORDER BY id DESC LIMIT 1`
)

func (s *Store) runExitQuery() string {
	if s.pg {
		return runExitSQL
	}
	return runExitSQLite
}

func (s *Store) runLatestQuery() string {
	if s.pg {
		return runLatestSQL
	}
	return runLatestSQLite
}

// runKeyArgs are the arguments that name a contact's runs of a workflow
// in runExitQuery and runLatestQuery: on SQLite its key and its recent
// runs come first (runsOfKeySQL).
func (b *eventBatch) runKeyArgs(partner, contact, workflow string) []any {
	if b.s.pg {
		return []any{partner, contact, workflow}
	}
	key := runKeyOf(partner, workflow, contact)
	return []any{key, idList(b.keys.recentRuns.appendIDs(nil, key)), partner, contact, workflow}
}

// AcceptEvents stores events in order, in one transaction, each with what
// it does: an event whose id the partner already sent is a no-op (its
// result says Duplicate); otherwise its exits cancel waiting runs first,
// then its starts create runs, unless the contact has a waiting run of
// that workflow or started one within its reentry time. The answer comes
// after the commit: an accepted event is stored, with its runs.
//
// Concurrent calls share a transaction (events_group.go), in the order
// they queued; a call's error is its own.
func (s *Store) AcceptEvents(ctx context.Context, events []EventWrite, now time.Time) ([]EventResult, error) {
	return s.acceptGrouped(ctx, events, now)
}

// AcceptEventsFile is AcceptEvents for the events of an events/ file, and
// marks the file queued with its row count in the same transaction: a
// crash leaves either the file unread and no event, or both done.
func (s *Store) AcceptEventsFile(ctx context.Context, fileID int64, rows int, events []EventWrite, now time.Time) ([]EventResult, error) {
	return s.acceptEvents(ctx, events, nil, now, fileID, rows)
}

// EventsOfRun returns the event that started a run and the one that
// cancelled it, if any, in that order.
func (s *Store) EventsOfRun(ctx context.Context, r Run) ([]Event, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, partner, event_id, name, email, phone, ref, key, data, source, occurred_at, received_at
		FROM events WHERE id IN (?, ?) ORDER BY id`, r.EventID, r.ExitEvent)
	if err != nil {
		return nil, fmt.Errorf("cannot read the events of run %d: %w", r.ID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var data string
		var occ, rec int64
		if err := rows.Scan(&e.ID, &e.Partner, &e.EventID, &e.Name, &e.Email, &e.Phone, &e.Ref, &e.Key, &data, &e.Source, &occ, &rec); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(data), &e.Data)
		e.OccurredAt, e.ReceivedAt = fromMS(occ), fromMS(rec)
		out = append(out, e)
	}
	return out, rows.Err()
}
