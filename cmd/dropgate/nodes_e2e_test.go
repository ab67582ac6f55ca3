package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store/storetest"
)

type apiNode struct {
	ID       int64  `json:"id"`
	Hostname string `json:"hostname"`
	Claimed  int    `json:"claimed"`
}

func listNodes(t *testing.T, d *testDaemon) []apiNode {
	t.Helper()
	var resp struct{ Nodes []apiNode }
	if code := d.API(t, "GET", "/api/v1/nodes", &resp); code != 200 {
		t.Fatalf("GET /api/v1/nodes: %d", code)
	}
	return resp.Nodes
}

// A daemon on SQLite is the one node.
func TestServeListsItselfAsTheNode(t *testing.T) {
	d := startDaemon(t, testConfig(t, t.TempDir()))
	if nodes := listNodes(t, d); len(nodes) != 1 || nodes[0].ID == 0 || nodes[0].Hostname == "" {
		t.Fatalf("nodes = %+v", nodes)
	}
}

// Two daemons on one PostgreSQL are two nodes, each listed by either;
// one that stops leaves the list at once.
func TestServeOnPostgresRegistersEachNodeAndAStopUnregistersIt(t *testing.T) {
	storetest.PostgresPassOnly(t)
	dsn := pgtest.Schema(t)
	var daemons []*testDaemon
	for i := range 2 {
		cfg := testConfig(t, t.TempDir())
		cfg.Store = config.StoreConfig{Driver: config.StorePostgres, DSN: dsn, Node: fmt.Sprintf("node%d", i)}
		daemons = append(daemons, startDaemon(t, cfg))
	}
	a, b := daemons[0], daemons[1]
	nodes := listNodes(t, b)
	if len(nodes) != 2 || nodes[0].ID == nodes[1].ID {
		t.Fatalf("nodes = %+v", nodes)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := listNodes(t, a); len(left) != 1 || left[0].ID != nodes[0].ID {
		t.Fatalf("nodes after one stopped = %+v (were %+v)", left, nodes)
	}

	// A third daemon named as a live node, from another data_dir, is
	// refused before it touches the homes.
	cfg := testConfig(t, t.TempDir())
	cfg.Store = config.StoreConfig{Driver: config.StorePostgres, DSN: dsn, Node: "node0"}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := serve(context.Background(), cfg, logger, func(addrs) { t.Error("a node named as a live one started") })
	if err == nil || !strings.Contains(err.Error(), `node name "node0" is in use`) {
		t.Errorf("serve with a live node's name = %v", err)
	}
}
