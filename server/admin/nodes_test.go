package admin

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// GET /api/v1/nodes lists the one SQLite node with the messages it holds,
// to admin tokens only.
func TestNodesListsTheRunningNode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.store.RegisterNode(ctx, "box", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	j := f.job(t, "acme", 3)
	if cs, err := f.store.ClaimMessages(ctx, j.ID, "sms", time.Now(), time.Minute, 2); err != nil || len(cs) != 2 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	if code, _ := f.do(t, "GET", "/api/v1/nodes", partnerToken); code != 403 {
		t.Errorf("nodes with a partner key: %d, want 403", code)
	}
	code, body := f.do(t, "GET", "/api/v1/nodes", adminToken)
	nodes, _ := body["nodes"].([]any)
	if code != 200 || len(nodes) != 1 {
		t.Fatalf("nodes = %d %v", code, body)
	}
	n := nodes[0].(map[string]any)
	if n["id"] != float64(id) || n["hostname"] != "box" || n["claimed"] != float64(2) || n["heartbeat_at"] == "" {
		t.Fatalf("node = %v", n)
	}
}

// On PostgreSQL every live node is listed, each with its own claims,
// whichever node answers.
func TestNodesListsEveryNodeOnPostgres(t *testing.T) {
	storetest.PostgresPassOnly(t)
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	var nodes []*store.Store
	for _, host := range []string{"a", "b"} {
		st, err := store.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if _, err := st.RegisterNode(ctx, host, "", time.Now()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, st)
	}
	j, _, err := nodes[0].CreateJob(ctx, store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{
		{Channel: "sms", Recipient: "+1555", Body: "a"}, {Channel: "sms", Recipient: "+1556", Body: "b"}, {Channel: "sms", Recipient: "+1557", Body: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := nodes[0].ClaimMessages(ctx, j.ID, "sms", time.Now(), time.Minute, 3); err != nil || len(cs) != 3 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	s, err := New(Options{Config: cfg, Store: nodes[1]})
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // the bound listener is not used: httptest serves
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	f := &fixture{srv: ts, store: nodes[1]}
	code, body := f.do(t, "GET", "/api/v1/nodes", adminToken)
	list, _ := body["nodes"].([]any)
	if code != 200 || len(list) != 2 {
		t.Fatalf("nodes = %d %v", code, body)
	}
	for i, want := range []struct {
		host    string
		claimed float64
	}{{"a", 3}, {"b", 0}} {
		n := list[i].(map[string]any)
		if n["id"] != float64(nodes[i].NodeID()) || n["hostname"] != want.host || n["claimed"] != want.claimed {
			t.Errorf("node %d = %v, want %s holding %v", i, n, want.host, want.claimed)
		}
	}
}
