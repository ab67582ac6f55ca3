package sender

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
)

// BenchmarkScaleOutNodes measures what more nodes on one PostgreSQL buy
// when sending is latency-bound: a sink that answers after 20 ms, an http
// channel of concurrency 4 per node, no rate limit. One node sends 2,000
// messages, then three nodes 6,000 (a job queued on each), each timed from
// the senders' start until every job is done; `ratio` is three nodes'
// msgs/s over one node's, same run (the issue asks for at least 2.5).
//
//	DROPGATE_TEST_POSTGRES=... go test ./sender -run '^$' -bench ScaleOutNodes -benchtime 1x
func BenchmarkScaleOutNodes(b *testing.B) {
	if pgtest.DSN() == "" {
		b.Skip(pgtest.EnvVar + " is not set")
	}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"p1"}`)
	}))
	b.Cleanup(sink.Close)
	one := scaleOutRun(b, sink.URL, 1, 2000)
	three := scaleOutRun(b, sink.URL, 3, 6000)
	b.ReportMetric(one, "one_node_msgs/s")
	b.ReportMetric(three, "three_nodes_msgs/s")
	b.ReportMetric(three/one, "ratio")
}

// scaleOutRun sends total messages with n nodes on a fresh schema and
// returns their messages per second.
func scaleOutRun(b *testing.B, sinkURL string, n, total int) float64 {
	ctx := context.Background()
	dsn := pgtest.Schema(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var senders []*Sender
	var jobs []int64
	var first *store.Store
	for i := range n {
		cfg := config.Default()
		cfg.DataDir = b.TempDir()
		cfg.Channels = []config.Channel{{Name: "sms", Type: config.ChannelHTTP, URL: sinkURL + "/v1/sms", IDPath: "/id", Concurrency: 4}}
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		st, err := store.OpenPostgres(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		if first == nil {
			first = st
		}
		if _, err := st.RegisterNode(ctx, fmt.Sprintf("node%d", i), "", time.Now()); err != nil {
			b.Fatal(err)
		}
		msgs := make([]store.Message, total/n)
		for k := range msgs {
			msgs[k] = store.Message{Channel: "sms", Recipient: fmt.Sprintf("+1555%07d", k), Body: "scale out"}
		}
		j, _, err := st.CreateJob(ctx, store.Job{Partner: fmt.Sprintf("p%d", i), Source: store.SourceFile, Priority: store.PriorityBulk}, msgs)
		if err != nil {
			b.Fatal(err)
		}
		jobs = append(jobs, j.ID)
		s, err := New(Options{Config: cfg, Store: st, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		senders = append(senders, s)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, n)
	start := time.Now()
	for _, s := range senders {
		go func() { done <- s.Run(runCtx) }()
	}
	for _, id := range jobs {
		for {
			j, err := first.Job(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if j.Status == store.JobDone {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	cancel()
	for range senders {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	return float64(total) / elapsed.Seconds()
}
