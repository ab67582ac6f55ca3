package killtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/internal/pgtest"
)

// The node benchmarks run the real binary, as the multi-node tests do,
// and need DROPGATE_TEST_POSTGRES (they skip without it). Figures and
// the commands are in BENCHMARKS.md:
//
//	go test ./cmd/dropgate -run '^$' -bench 'Nodes' -benchtime 1x -v

// latencySink is a provider that answers each request after delay
// (latency-bound, not CPU-bound) and records when each arrived.
type latencySink struct {
	delay time.Duration
	mu    sync.Mutex
	at    []time.Time
}

func (l *latencySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	l.mu.Lock()
	l.at = append(l.at, time.Now())
	n := len(l.at)
	l.mu.Unlock()
	if l.delay > 0 {
		time.Sleep(l.delay)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id": "p-%d"}`, n)
}

func (l *latencySink) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.at)
}

// rate is the sends per second between the 10th and the 90th percentile
// of the arrivals: the steady state, without the start and the tail.
func (l *latencySink) rate() float64 {
	l.mu.Lock()
	at := slices.Clone(l.at)
	l.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	lo, hi := len(at)/10, len(at)*9/10
	if hi <= lo+1 {
		return 0
	}
	return float64(hi-lo) / at[hi].Sub(at[lo]).Seconds()
}

// nodesRun is what one benchmark run measured.
type nodesRun struct {
	ingestRowsPerSec float64 // rows / (file renamed into place → file queued)
	sendsPerSec      float64
}

// runNodes starts n nodes (dsn "": one node on SQLite) sending an http
// channel of the given concurrency to a sink answering after delay, drops
// one file of rows messages into the shared inbox, and measures how fast
// it is queued and sent.
func runNodes(b *testing.B, bin string, n int, dsn string, delay time.Duration, concurrency, rows int) nodesRun {
	b.Helper()
	dir := b.TempDir()
	sink := &latencySink{delay: delay}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	shared := filepath.Join(dir, "shared")
	nodes := startNodes(b, bin, dir, shared, dsn, n, func(int) string {
		return httpChannel(srv.URL+"/v1/sms", concurrency, 0, 0)
	})
	inbox := filepath.Join(shared, "partners", "acme", "inbox")
	if err := os.MkdirAll(inbox, 0o750); err != nil {
		b.Fatal(err)
	}
	tmp := filepath.Join(inbox, ".bench.csv.part")
	if err := os.WriteFile(tmp, []byte(numberedCSV(0, rows)), 0o640); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := os.Rename(tmp, filepath.Join(inbox, "bench.csv")); err != nil {
		b.Fatal(err)
	}
	var run nodesRun
	crashWait(b, 10*time.Minute, "the file to be queued", func() bool {
		var resp struct{ Files []struct{ Status string } }
		if !crashAdminGet(nodes[0].admin, "/api/v1/files", &resp) || len(resp.Files) == 0 || resp.Files[0].Status != "queued" {
			time.Sleep(15 * time.Millisecond)
			return false
		}
		run.ingestRowsPerSec = float64(rows) / time.Since(start).Seconds()
		return true
	})
	crashWait(b, 10*time.Minute, "every message to be sent", func() bool {
		time.Sleep(50 * time.Millisecond)
		return sink.count() >= rows
	})
	run.sendsPerSec = sink.rate()
	for _, nd := range nodes {
		nd.stop(b)
	}
	return run
}

// BenchmarkNodesScaleOut: three nodes against one, same run, each node
// sending with concurrency 4 to a provider that answers after 20 ms: the
// work is waiting, so three nodes should send about three times as fast.
func BenchmarkNodesScaleOut(b *testing.B) {
	if pgtest.DSN() == "" {
		b.Skip("needs " + pgtest.EnvVar)
	}
	bin := buildDaemon(b, b.TempDir())
	const rows = 4000
	for range b.N {
		one := runNodes(b, bin, 1, pgtest.Schema(b), 20*time.Millisecond, 4, rows)
		three := runNodes(b, bin, 3, pgtest.Schema(b), 20*time.Millisecond, 4, rows)
		b.Logf("%d messages, 20 ms provider, concurrency 4 per node: one node %.0f sends/s, three nodes %.0f sends/s (%.2f×)",
			rows, one.sendsPerSec, three.sendsPerSec, three.sendsPerSec/one.sendsPerSec)
		b.ReportMetric(one.sendsPerSec, "sends/s-1node")
		b.ReportMetric(three.sendsPerSec, "sends/s-3nodes")
		b.ReportMetric(three.sendsPerSec/one.sendsPerSec, "x-scaleout")
	}
}

// BenchmarkNodesPostgresVsSQLite: one node on SQLite and one on
// PostgreSQL, same run: a file's ingest rate and the sends per second to
// a provider that answers at once (concurrency 4).
func BenchmarkNodesPostgresVsSQLite(b *testing.B) {
	if pgtest.DSN() == "" {
		b.Skip("needs " + pgtest.EnvVar)
	}
	bin := buildDaemon(b, b.TempDir())
	rows := 200_000
	for range b.N {
		lite := runNodes(b, bin, 1, "", 0, 4, rows)
		pg := runNodes(b, bin, 1, pgtest.Schema(b), 0, 4, rows)
		b.Logf("%d rows, one node: ingest SQLite %.0f rows/s, PostgreSQL %.0f rows/s (%.2f); http sends SQLite %.0f/s, PostgreSQL %.0f/s (%.2f)",
			rows, lite.ingestRowsPerSec, pg.ingestRowsPerSec, pg.ingestRowsPerSec/lite.ingestRowsPerSec,
			lite.sendsPerSec, pg.sendsPerSec, pg.sendsPerSec/lite.sendsPerSec)
		b.ReportMetric(lite.ingestRowsPerSec, "ingest-rows/s-sqlite")
		b.ReportMetric(pg.ingestRowsPerSec, "ingest-rows/s-pg")
		b.ReportMetric(lite.sendsPerSec, "sends/s-sqlite")
		b.ReportMetric(pg.sendsPerSec, "sends/s-pg")
		b.ReportMetric(pg.sendsPerSec/lite.sendsPerSec, "send-ratio-pg/sqlite")
	}
}
