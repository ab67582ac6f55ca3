package sender

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// apiUnderBulkSends is how many API sends BenchmarkAPISendUnderBulkLoad
// times.
const apiUnderBulkSends = 200

// BenchmarkAPISendUnderBulkLoad measures an API send's created → sent
// time while a large file job sends on the same channel (issue 14.5): a
// real store and Sender (default poll interval, an http channel of
// concurrency 4 to an in-process sink), a file job of DROPGATE_BENCH_BULK
// messages (default 1,000,000) written through the job writer and sending,
// then 200 single-message API jobs, one at a time, each stored as
// POST /api/v1/messages stores it (store.CreateAPIJob) and followed by the
// Nudge the admin server gives. Timed from before the store call to the
// sink seeing the message (p50_ms, p99_ms, max_ms); also the store call
// alone (store_p99_ms: the API's own write, waiting for the database's one
// writer) and from its return to the sink (queued_p50_ms, queued_p99_ms:
// the sender's share); and the bulk job's rate meanwhile.
//
//	go test ./sender -run '^$' -bench APISendUnderBulkLoad -benchtime 1x
func BenchmarkAPISendUnderBulkLoad(b *testing.B) {
	bulk := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_BULK")); err == nil && v > 0 {
		bulk = v
	}
	var bulkSeen atomic.Int64
	arrived := make(chan time.Time, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"p1"}`)
		if strings.Contains(string(body), "api send") {
			arrived <- time.Now()
		} else {
			bulkSeen.Add(1)
		}
	}))
	b.Cleanup(sink.Close)

	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Channels: []string{"sms"}}}
	cfg.Channels = []config.Channel{{Name: "sms", Type: config.ChannelHTTP, URL: sink.URL + "/v1/sms", IDPath: "/id", Concurrency: 4,
		Body: `{"to": {{json .To}}, "text": {{json .Body}}, "id": {{json .ID}}}`}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fileID, err := st.CreateFile(ctx, store.File{Partner: "acme", Name: "inbox/bulk.csv"})
	if err != nil {
		b.Fatal(err)
	}
	w, err := st.BeginFileJob(ctx, "acme", fileID, "inbox/bulk.csv", 5000)
	if err != nil {
		b.Fatal(err)
	}
	for i := range bulk {
		if err := w.Add(store.Message{Line: i + 2, Channel: "sms", Recipient: fmt.Sprintf("+35191%07d", i), Body: "bulk message"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(ctx, bulk, nil); err != nil {
		b.Fatal(err)
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(Options{Config: cfg, Store: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(time.Minute); bulkSeen.Load() < 1000; {
		if time.Now().After(deadline) {
			b.Fatalf("the bulk job did not start sending in a minute (%d sent)", bulkSeen.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	b.ResetTimer()
	lat := make([]time.Duration, 0, apiUnderBulkSends)
	stored := make([]time.Duration, 0, apiUnderBulkSends) // the store call's share
	queued := make([]time.Duration, 0, apiUnderBulkSends) // from the job stored to the sink: the sender's share
	bulk0, start := bulkSeen.Load(), time.Now()
	for i := range apiUnderBulkSends {
		msg := store.Message{Channel: "sms", Recipient: fmt.Sprintf("+35196%07d", i), Body: fmt.Sprintf("api send %d", i)}
		t0 := time.Now()
		if _, _, _, err := st.CreateAPIJob(ctx, store.APIRequest{Partner: "acme"}, []store.Message{msg}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		stored = append(stored, t1.Sub(t0))
		s.Nudge()
		select {
		case at := <-arrived:
			lat = append(lat, at.Sub(t0))
			queued = append(queued, at.Sub(t1))
		case <-time.After(30 * time.Second):
			b.Fatalf("API send %d not delivered within 30 s", i)
		}
		time.Sleep(5 * time.Millisecond) // independent sends, not a burst
	}
	bulkRate := float64(bulkSeen.Load()-bulk0) / time.Since(start).Seconds()
	b.StopTimer()
	if bulkSeen.Load() >= int64(bulk) {
		b.Logf("the bulk job finished before the API sends did: raise DROPGATE_BENCH_BULK")
	}
	slices.Sort(lat)
	slices.Sort(stored)
	slices.Sort(queued)
	pct := func(d []time.Duration, p int) float64 { return float64(d[(len(d)*p+99)/100-1]) / 1e6 }
	b.ReportMetric(pct(lat, 50), "p50_ms")
	b.ReportMetric(pct(lat, 99), "p99_ms")
	b.ReportMetric(pct(lat, 100), "max_ms")
	b.ReportMetric(pct(stored, 99), "store_p99_ms")
	b.ReportMetric(pct(queued, 50), "queued_p50_ms")
	b.ReportMetric(pct(queued, 99), "queued_p99_ms")
	b.ReportMetric(bulkRate, "bulk_msgs/s")
}
