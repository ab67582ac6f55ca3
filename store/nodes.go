package store

import (
	"context"
	"database/sql"
	"fmt"
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

// nodeSlot is this process's node id (0 before RegisterNode).
type nodeSlot struct{ id atomic.Int64 }

// NodeID is the id RegisterNode gave this process's node, or 0.
func (s *Store) NodeID() int64 { return s.node.id.Load() }

// RegisterNode records this process as a node started at now, and from
// then on each claim it makes records the node (PostgreSQL), so that its
// leases can be listed and released. On SQLite, where one process at a
// time runs on the database, earlier nodes left unstopped (a crash) are
// marked stopped.
func (s *Store) RegisterNode(ctx context.Context, hostname string, now time.Time) (int64, error) {
	var id int64
	err := s.inWriterTx(ctx, func(tx *sql.Tx) error {
		if !s.pg {
			if _, err := tx.ExecContext(ctx, `UPDATE nodes SET stopped_at = heartbeat_at WHERE stopped_at IS NULL`); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO nodes (hostname, started_at, heartbeat_at) VALUES (?, ?, ?) RETURNING id`,
			hostname, ms(now), ms(now)).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("cannot register the node: %w", err)
	}
	s.node.id.Store(id)
	return id, nil
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
