package main

import (
	"context"
	"log/slog"
	"os"
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

// registerNode records this process as a node and logs its id.
func registerNode(ctx context.Context, st *store.Store, logger *slog.Logger) (*node, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	id, err := st.RegisterNode(ctx, host, time.Now())
	if err != nil {
		return nil, err
	}
	n := &node{st: st, logger: logger.With("component", "node"), id: id}
	n.logger.Info("node registered", "node", id, "hostname", host, "postgres", st.Postgres())
	return n, nil
}

// Run records a heartbeat every store.NodeHeartbeat until ctx ends.
func (n *node) Run(ctx context.Context) error {
	t := time.NewTicker(store.NodeHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := n.st.Heartbeat(ctx, time.Now()); err != nil && ctx.Err() == nil {
			n.logger.Error("cannot record the node's heartbeat", "err", err)
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
