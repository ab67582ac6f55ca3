package workflow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
)

// countingComposer is a node's Composer that records every recipient it
// renders a message for. The first Compose of each node waits (a while)
// until every node has reached one, so that the nodes' schedulers work at
// once rather than one taking every run before the other starts.
type countingComposer struct {
	Composer
	node    int
	rec     *composeRecord
	entered sync.Once
}

type composeRecord struct {
	mu       sync.Mutex
	rendered map[string][]int // recipient → the nodes that rendered it
	arrived  sync.WaitGroup
	all      chan struct{}
}

func (c *countingComposer) Compose(ctx context.Context, partner string, req ingest.APISend) ([]store.Message, []ingest.Problem, error) {
	c.entered.Do(func() {
		c.rec.arrived.Done()
		select {
		case <-c.rec.all:
		case <-time.After(30 * time.Second):
		}
	})
	c.rec.mu.Lock()
	for _, r := range req.Recipients {
		c.rec.rendered[r.To] = append(c.rec.rendered[r.To], c.node)
	}
	c.rec.mu.Unlock()
	return c.Composer.Compose(ctx, partner, req)
}

// Two nodes (two engines over two store handles on one PostgreSQL schema)
// with due runs split them: every run fires once, its message queued once,
// no run is rendered by both nodes, and both do work.
func TestTwoNodesSplitTheDueRuns(t *testing.T) {
	if why := pgtest.Missing(); why != "" {
		t.Fatal(why)
	}
	if pgtest.DSN() == "" {
		t.Skip("no PostgreSQL test database: set " + pgtest.EnvVar)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	src := `data_dir = "` + t.TempDir() + `"
[admin]
listen = "127.0.0.1:0"
[[partner]]
name = "acme"
region = "PT"
channels = ["email", "sms"]
[[workflow]]
name = "welcome"
partner = "acme"
on = "signup"
steps = [{ send = { template = "hello" } }]
`
	cfg, err := config.Parse(strings.NewReader(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.SchemaFor(t, t.Name())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := newFakeClock(start0)
	const nodes, runs, batch = 2, 120, 10
	rec := &composeRecord{rendered: map[string][]int{}, all: make(chan struct{})}
	rec.arrived.Add(nodes)
	go func() { rec.arrived.Wait(); close(rec.all) }()
	var stores []*store.Store
	var engines []*Engine
	for i := range nodes {
		st, err := store.OpenPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		in, err := ingest.New(ingest.Options{Config: cfg, Store: st, Logger: quiet, Node: fmt.Sprintf("in%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, _, err := in.PutTemplate(ctx, "acme", "hello", "channel: email\nsubject: Hello\n---\nHello {{.key}}\n"); err != nil {
				t.Fatal(err)
			}
		}
		eng, err := New(Options{Config: cfg, Store: st, Composer: &countingComposer{Composer: in, node: i, rec: rec},
			Clock: clock, Logger: quiet, Batch: batch, Node: fmt.Sprintf("node%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		stores, engines = append(stores, st), append(engines, eng)
	}
	var events []store.Event
	for i := range runs {
		events = append(events, store.Event{Partner: "acme", Name: "signup", Email: fmt.Sprintf("u%03d@example.com", i),
			Key: fmt.Sprint(i), Source: store.EventFromAPI})
	}
	if _, err := engines[0].Accept(ctx, events); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, eng := range engines {
		wg.Go(func() { eng.Run(ctx) })
	}
	t.Cleanup(func() {
		for _, eng := range engines {
			eng.Close()
		}
		wg.Wait()
	})

	deadline := time.Now().Add(120 * time.Second)
	for {
		counts, err := stores[1].RunCounts(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if counts["acme"]["welcome"]["done"] == runs || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs, err := stores[0].ListRuns(ctx, store.RunFilter{Partner: "acme", Workflow: "welcome", Limit: runs + 10})
	if err != nil {
		t.Fatal(err)
	}
	done := 0
	for _, r := range rs {
		if r.Status == store.RunDone {
			done++
		}
	}
	if done != runs {
		t.Fatalf("%d of %d runs done", done, runs)
	}
	jobs, err := stores[0].ListJobs(ctx, store.JobFilter{Partner: "acme", Source: store.SourceWorkflow})
	if err != nil {
		t.Fatal(err)
	}
	queued := map[string]int{}
	for _, j := range jobs {
		if err := stores[0].JobMessages(ctx, j.ID, "", 0, runs+10, func(m store.Message) error {
			queued[m.Recipient]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	byNode := make([]int, nodes)
	for i := range runs {
		email := fmt.Sprintf("u%03d@example.com", i)
		if queued[email] != 1 {
			t.Errorf("%s queued %d times, want once", email, queued[email])
		}
		if len(rec.rendered[email]) != 1 {
			t.Errorf("%s rendered by nodes %v, want one", email, rec.rendered[email])
		}
		for _, n := range rec.rendered[email] {
			byNode[n]++
		}
	}
	t.Logf("runs rendered per node: %v", byNode)
	for n, c := range byNode {
		if c == 0 {
			t.Errorf("node %d rendered no run: the nodes did not split the runs", n)
		}
	}
}
