package store

import "fmt"

// On SQLite a batch of events takes its ids from the tables' largest (the
// transaction holds the database's only writer) and reads the stored
// event ids and the contacts' latest runs knowing that nobody writes
// them meanwhile. On PostgreSQL other nodes accept events at the same
// time: ids are reserved instead (reserveIDs), and the reservation's lock
// on the events' ids, held until the batch commits, makes the batches of
// all nodes follow one another. A batch therefore reads what every
// earlier batch committed: an event id sent to two nodes at once is
// stored once (the second batch sees it as a repeat, rather than failing
// on the unique index), and reentry sees the runs the other node started.

// latestRunsPG is latestRunsSQL for PostgreSQL, which has no bare columns
// beside MAX(): the first row of each contact, newest first,
// read from the workflow_runs_contact index.
const latestRunsPG = `SELECT DISTINCT ON (contact) contact, status, created_at, id FROM workflow_runs
	WHERE partner = ? AND workflow = ? AND contact IN (SELECT value FROM json_each(?)) ORDER BY contact, id DESC`

// latestRunsQuery is the engine's query for a batch's latest runs.
func (s *Store) latestRunsQuery() string {
	if s.pg {
		return latestRunsPG
	}
	return latestRunsSQL
}

// reserveIDsPG reserves ids for every event of the batch and every run it
// may start (unused ones are left as gaps) and takes the lock that
// serialises the batches of every node; it runs before the batch reads.
func (b *eventBatch) reserveIDsPG(events []EventWrite) error {
	first, err := reserveIDs(b.ctx, b.tx, "events", len(events))
	if err != nil {
		return fmt.Errorf("cannot reserve event ids: %w", err)
	}
	b.nextEv = first - 1
	runs := 0
	for i := range events {
		runs += len(events[i].Starts)
	}
	if runs == 0 {
		return nil
	}
	if first, err = reserveIDs(b.ctx, b.tx, "workflow_runs", runs); err != nil {
		return fmt.Errorf("cannot reserve run ids: %w", err)
	}
	b.nextRun = first - 1
	return nil
}
