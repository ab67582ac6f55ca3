package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
// by default the host name) running from dataDir, and logs its id. The
// caller holds dataDir's lock (lock.go).
func registerNode(ctx context.Context, st *store.Store, name, dataDir string, logger *slog.Logger) (*node, error) {
	instance, err := dataDirInstance(dataDir)
	if err != nil {
		return nil, err
	}
	id, err := st.RegisterNode(ctx, name, instance, time.Now())
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

// claimName is what this process writes in the run and file claims and
// the bans it shares (store.NodeClaimName).
func (n *node) claimName() string { return store.NodeClaimName(n.id) }

// instanceFile holds, in data_dir, the random id that tells this data_dir's
// node from another of the same name (store.RegisterNode).
const instanceFile = "node-instance"

// dataDirInstance reads dataDir's instance id, made on first use.
func dataDirInstance(dataDir string) (string, error) {
	path := filepath.Join(dataDir, instanceFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cannot read the node's instance id: %w", err)
	}
	id := rand.Text()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("cannot write the node's instance id: %w", err)
	}
	return id, nil
}
