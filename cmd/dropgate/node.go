package main

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/dropgate/dropgate/store"
)

// node is this process's entry in the store's nodes table: registered at
// start, kept alive by Run's heartbeats, marked stopped (its leases
// released) by stop. On PostgreSQL several nodes share the queue, and
// GET /api/v1/nodes lists them.
type node struct {
	st     *store.Store
	logger *slog.Logger
	id     int64
}

// registerNode records this process as a node named name ([store] node,
// by default the host name) and logs its id.
func registerNode(ctx context.Context, st *store.Store, name string, logger *slog.Logger) (*node, error) {
	id, err := st.RegisterNode(ctx, name, time.Now())
	if err != nil {
		return nil, err
	}
	n := &node{st: st, logger: logger.With("component", "node"), id: id}
	n.logger.Info("node registered", "node", id, "name", name, "postgres", st.Postgres())
	return n, nil
}

// Run records a heartbeat every store.NodeHeartbeat until ctx ends, and
// removes the list sends that nodes gone since left half-written (only
// PostgreSQL has other nodes).
func (n *node) Run(ctx context.Context) error {
	t := time.NewTicker(store.NodeHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		if err := n.st.Heartbeat(ctx, now); err != nil && ctx.Err() == nil {
			n.logger.Error("cannot record the node's heartbeat", "err", err)
		}
		removed, err := n.st.AbandonDeadNodesListSends(ctx, now)
		if err != nil && ctx.Err() == nil {
			n.logger.Error("cannot remove the list sends of stopped nodes", "err", err)
		}
		if removed > 0 {
			n.logger.Warn("removed list sends that stopped nodes left unfinished; their clients got no answer and may send again", "jobs", removed)
		}
	}
}

// stop marks the node stopped once its sender has stopped, returning to
// the queue what it still holds for the other nodes.
func (n *node) stop(ctx context.Context) {
	released, err := n.st.StopNode(context.WithoutCancel(ctx), time.Now())
	if err != nil {
		n.logger.Error("cannot mark the node stopped; its leases will expire", "err", err)
		return
	}
	if released > 0 {
		n.logger.Info("returned the node's leased messages to the queue", "count", released)
	}
}

// claimName is what this process writes in the file claims and bans it
// shares: its node id, new at each start, so that a restarted node does
// not take its previous life's claims for live ones of its own.
func (n *node) claimName() string { return "node-" + strconv.FormatInt(n.id, 10) }
