package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one running dropgate (`dropgate serve`) on the database.
type Node struct {
	ID          int64     `json:"id"`
	Hostname    string    `json:"hostname"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// Claimed is how many messages the node holds leased ("sending").
	Claimed int `json:"claimed"`
}

// NodeHeartbeat is how often a node records that it is alive; a node
// silent for NodeStale is not listed as live.
const (
	NodeHeartbeat = 10 * time.Second
	NodeStale     = 3 * NodeHeartbeat
)

// nodeSlot is this process's node id (0 before RegisterNode), and the
// earlier lives of this node that RegisterNode found unstopped (a crash),
// until TakeBackPreviousLives took back what they held.
type nodeSlot struct {
	id       atomic.Int64
	mu       sync.Mutex
	previous []int64
}

// NodeID is the id RegisterNode gave this process's node, or 0.
func (s *Store) NodeID() int64 { return s.node.id.Load() }

// NodeClaimName is what a node writes in the run and file claims it
// holds: its id, new at each start, so that a restarted node does not
// take its previous life's claims for live ones of its own.
func NodeClaimName(id int64) string { return "node-" + strconv.FormatInt(id, 10) }

// RegisterNode records this process as a node named hostname started at
// now, running from the data_dir that instance names, and from then on
// each claim it makes records the node (PostgreSQL), so that its leases
// can be listed and released. The caller holds the data_dir's lock, so no
// earlier life of this node still runs: the earlier nodes of the same
// name and instance left unstopped (a crash) are marked stopped, their
// run and file claims freed for any node to take now (rather than in a
// minute and in 30 s), and TakeBackPreviousLives returns the messages
// they held. On SQLite, where one process at a time runs on the
// database, every earlier node left unstopped is such a life.
func (s *Store) RegisterNode(ctx context.Context, hostname, instance string, now time.Time) (int64, error) {
	var id int64
	var previous []int64
	err := s.inWriterTx(ctx, func(tx *sql.Tx) error {
		previous = previous[:0]
		if s.pg {
			if err := namesakeTx(ctx, tx, hostname, instance, now); err != nil {
				return err
			}
		}
		q := `UPDATE nodes SET stopped_at = heartbeat_at WHERE stopped_at IS NULL RETURNING id`
		args := []any{}
		if s.pg {
			q = `UPDATE nodes SET stopped_at = heartbeat_at WHERE stopped_at IS NULL AND hostname = ? AND instance = ? RETURNING id`
			args = []any{hostname, instance}
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p int64
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return err
			}
			previous = append(previous, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := releasePreviousClaimsTx(ctx, tx, previous, now); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO nodes (hostname, instance, started_at, heartbeat_at) VALUES (?, ?, ?, ?) RETURNING id`,
			hostname, instance, ms(now), ms(now)).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("cannot register the node: %w", err)
	}
	s.node.id.Store(id)
	s.node.mu.Lock()
	s.node.previous = previous
	s.node.mu.Unlock()
	return id, nil
}

// TakeBackPreviousLives returns to the queue, due at once, the messages
// that the earlier lives of this node found by RegisterNode still held (a
// delivery recorded but not settled is settled as sent, as StopNode
// does), and returns how many. The sender calls it at start once it has
// stored what its delivery log kept, so that no outcome the log holds is
// lost to a requeue; without it, what a killed node held would wait for
// its leases to run out. It does nothing the second time, or without
// RegisterNode.
func (s *Store) TakeBackPreviousLives(ctx context.Context, now time.Time) (int64, error) {
	s.node.mu.Lock()
	previous := s.node.previous
	s.node.mu.Unlock()
	if len(previous) == 0 {
		return 0, nil
	}
	ids, err := json.Marshal(previous)
	if err != nil {
		return 0, err
	}
	// On SQLite a claim does not record its node: every message in flight
	// is the earlier life's.
	held, heldArgs := "", []any{}
	if s.pg {
		held, heldArgs = ` AND node IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`, []any{string(ids)}
	}
	if err := s.prepare(ctx, tallySQLs...); err != nil {
		return 0, fmt.Errorf("cannot take back the previous life's claims: %w", err)
	}
	var n int64
	err = s.inWriterTx(ctx, func(tx *sql.Tx) error {
		if err := s.settleTx(ctx, tx, held, heldArgs...); err != nil {
			return err
		}
		var err error
		n, err = requeueTx(ctx, tx, now, held, heldArgs...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot take back the previous life's claims: %w", err)
	}
	s.node.mu.Lock()
	s.node.previous = nil
	s.node.mu.Unlock()
	if n > 0 {
		s.jobsQueued()
	}
	return n, nil
}

// NodeNameInUseError is RegisterNode's refusal of a name that a live node
// running from another data_dir has: two nodes of one name would empty
// each other's uploads in progress and take each other's claims.
type NodeNameInUseError struct {
	Name          string
	LastHeartbeat time.Time
	Now           time.Time
}

func (e *NodeNameInUseError) Error() string {
	return fmt.Sprintf("node name %q is in use by a live node running from another data_dir (last heartbeat %s ago): "+
		"give each node its own [store] node; if that node is gone, start this one again once it has been silent for %s",
		e.Name, e.Now.Sub(e.LastHeartbeat).Round(time.Second), NodeStale)
}

// namesakeTx fails with a *NodeNameInUseError when a live node (heard from
// within NodeStale) has hostname and another instance. Nodes registered
// before instances were recorded (”) are not known to be others.
func namesakeTx(ctx context.Context, tx *sql.Tx, hostname, instance string, now time.Time) error {
	var beat sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(heartbeat_at) FROM nodes WHERE stopped_at IS NULL AND hostname = ?
		AND instance <> '' AND instance <> ? AND heartbeat_at >= ?`, hostname, instance, ms(now.Add(-NodeStale))).Scan(&beat); err != nil {
		return err
	}
	if beat.Valid {
		return &NodeNameInUseError{Name: hostname, LastHeartbeat: fromMS(beat.Int64), Now: now}
	}
	return nil
}

// releaseRunClaimsSQL frees the run claims of the node names given as a
// JSON array (the second argument; the first is now). Claimed runs were
// due when claimed: PostgreSQL finds them through its partial due index.
// SQLite dropped that index (migration 0054) and finds them through
// workflow_runs_claimed (0059), a partial index it uses only because this
// WHERE repeats the index's condition (claimed_by not empty); without it a
// restart after a crash would read every run
// (TestReleasingPreviousRunClaimsUsesTheClaimedIndex).
const releaseRunClaimsSQL = `UPDATE workflow_runs SET claimed_by = '', claimed_until = 0
	WHERE status = 'waiting' AND due_at <= ? AND claimed_by <> '' AND claimed_by IN (SELECT value FROM json_each(?))`

// releasePreviousClaimsTx frees the run and file claims of the nodes
// previous (earlier lives of the registering node).
func releasePreviousClaimsTx(ctx context.Context, tx *sql.Tx, previous []int64, now time.Time) error {
	if len(previous) == 0 {
		return nil
	}
	names := make([]string, len(previous))
	for i, p := range previous {
		names[i] = NodeClaimName(p)
	}
	claims, err := json.Marshal(names)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, releaseRunClaimsSQL, ms(now), string(claims)); err != nil {
		return fmt.Errorf("cannot free the previous life's run claims: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE file_claims SET lease_until = 0 WHERE node IN (SELECT value FROM json_each(?))`, string(claims)); err != nil {
		return fmt.Errorf("cannot free the previous life's file claims: %w", err)
	}
	return nil
}

// Heartbeat records that this process's node is alive at now.
func (s *Store) Heartbeat(ctx context.Context, now time.Time) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE nodes SET heartbeat_at = ? WHERE id = ?`, ms(now), s.NodeID()); err != nil {
		return fmt.Errorf("cannot record the node's heartbeat: %w", err)
	}
	return nil
}

// StopNode marks this process's node stopped at now. On PostgreSQL it
// first returns to the queue, due at once, every message the node still
// holds (the sender releases what it claimed when it stops; this catches
// what it could not), so that other nodes send them without waiting for
// the leases to run out; a delivery recorded but not settled is settled as
// sent. It returns how many messages went back to the queue.
func (s *Store) StopNode(ctx context.Context, now time.Time) (int64, error) {
	id := s.NodeID()
	if id == 0 {
		return 0, nil
	}
	var n int64
	err := s.inWriterTx(ctx, func(tx *sql.Tx) error {
		if s.pg {
			if err := s.settleTx(ctx, tx, ` AND node = ?`, id); err != nil {
				return err
			}
			var err error
			if n, err = requeueTx(ctx, tx, now, ` AND node = ?`, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE nodes SET stopped_at = ?, heartbeat_at = ? WHERE id = ?`, ms(now), ms(now), id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot stop the node: %w", err)
	}
	if n > 0 {
		s.jobsQueued()
	}
	return n, nil
}

// Nodes lists the live nodes at now (not stopped, heard from within
// NodeStale), oldest first, with the messages each holds. On SQLite, one
// node at a time, every message being sent is that node's.
func (s *Store) Nodes(ctx context.Context, now time.Time) ([]Node, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, hostname, started_at, heartbeat_at FROM nodes
		WHERE stopped_at IS NULL AND heartbeat_at >= ? ORDER BY id`, ms(now.Add(-NodeStale)))
	if err != nil {
		return nil, fmt.Errorf("cannot list nodes: %w", err)
	}
	var out []Node
	for rows.Next() {
		var n Node
		var started, beat int64
		if err := rows.Scan(&n.ID, &n.Hostname, &started, &beat); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot list nodes: %w", err)
		}
		n.StartedAt, n.HeartbeatAt = fromMS(started), fromMS(beat)
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list nodes: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	claimed := map[int64]int{}
	q := `SELECT node, COUNT(*) FROM messages WHERE job_id IN (` + liveJobs + `) AND status = 'sending' GROUP BY node`
	if !s.pg {
		q = `SELECT 0, COUNT(*) FROM messages WHERE job_id IN (` + liveJobs + `) AND status = 'sending'`
	}
	crows, err := s.reader.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cannot count the nodes' claims: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		var node int64
		var c int
		if err := crows.Scan(&node, &c); err != nil {
			return nil, fmt.Errorf("cannot count the nodes' claims: %w", err)
		}
		claimed[node] = c
	}
	for i := range out {
		if s.pg {
			out[i].Claimed = claimed[out[i].ID]
		} else if i == len(out)-1 {
			out[i].Claimed = claimed[0]
		}
	}
	return out, crows.Err()
}
