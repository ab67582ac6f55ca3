package admin

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// sendBench is a daemon's parts for the send benchmarks: a store, an
// ingester (which renders API sends as it does CSV rows, and ingests the
// anchor file) and the admin server on loopback. The sender does not run:
// what is measured is stored and answered, as in production.
type sendBench struct {
	srv *Server
	cfg *config.Config
	st  *store.Store
	in  *ingest.Ingester
	url string
	hc  *http.Client
}

func newSendBench(b testing.TB) *sendBench {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Channels: []string{"sms"}}}
	cfg.Channels = []config.Channel{{Name: "sms", Type: config.ChannelHTTP, URL: "http://127.0.0.1:9/v1/sms", IDPath: "/id",
		Body: `{"to": {{json .To}}, "text": {{json .Body}}}`}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := ingest.New(ingest.Options{Config: cfg, Store: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	inDone := make(chan error, 1)
	go func() { inDone <- in.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-inDone })
	if _, _, err := in.PutTemplate(ctx, "acme", "otp", "channel: sms\n---\nHi {{.name}}, your code is {{.code}}.\n"); err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Config: cfg, Store: st, Logger: quiet, Compose: in.ComposeJob, Nudge: func() {}})
	if err != nil {
		b.Fatal(err)
	}
	s.Close() // the bound listener is not used: the benchmark uses httptest's
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(ts.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return &sendBench{srv: s, cfg: cfg, st: st, in: in, url: ts.URL + "/api/v1/messages", hc: hc}
}

// post sends one request and fails the benchmark unless it is answered 202.
func (sb *sendBench) post(b *testing.B, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, sb.url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := sb.hc.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Errorf("POST answered %d: %s", resp.StatusCode, out)
	}
}

// run makes total requests from clients goroutines, body(i) the i-th, and
// returns each request's latency and the wall time of all.
func (sb *sendBench) run(b *testing.B, clients, total int, body func(i int) []byte) ([]time.Duration, time.Duration) {
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || b.Failed() {
					return
				}
				t0 := time.Now()
				sb.post(b, body(i))
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func percentile(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[(len(s)*p+99)/100-1]
}

// BenchmarkAPISends16Clients measures single-recipient POST
// /api/v1/messages (a template, one recipient) from 16 concurrent clients
// on loopback, each answered 202 after its message is stored: requests/s,
// p50 and p99 over DROPGATE_BENCH_SENDS requests (default 20,000) after
// 1,000 of warm-up.
//
//	go test ./server/admin -run '^$' -bench APISends16Clients -benchtime 1x
func BenchmarkAPISends16Clients(b *testing.B) {
	sb := newSendBench(b)
	total := envInt("DROPGATE_BENCH_SENDS", 20_000)
	body := func(i int) []byte {
		return fmt.Appendf(nil, `{"partner":"acme","template":"otp","to":"+35191%07d","vars":{"name":"Ana","code":"%06d"}}`, i%10_000_000, i%1_000_000)
	}
	sb.run(b, 16, 1000, body)
	b.ResetTimer()
	var rates, cpus []float64
	var p50s, p99s []time.Duration
	g0, s0 := sb.srv.sends.groups.Load(), sb.srv.sends.grouped.Load()
	for range b.N {
		c0 := cpuTime()
		lat, wall := sb.run(b, 16, total, body)
		cpus = append(cpus, float64((cpuTime()-c0).Microseconds())/1000/float64(total))
		rates = append(rates, float64(total)/wall.Seconds())
		p50s, p99s = append(p50s, percentile(lat, 50)), append(p99s, percentile(lat, 99))
	}
	b.StopTimer()
	b.ReportMetric(float64(sb.srv.sends.grouped.Load()-s0)/float64(sb.srv.sends.groups.Load()-g0), "sends/commit")
	b.ReportMetric(median(rates), "req/s")
	b.ReportMetric(median(cpus), "cpu_ms/req")
	b.ReportMetric(float64(slices.Max(p50s))/1e6, "p50_ms")
	b.ReportMetric(float64(slices.Max(p99s))/1e6, "p99_ms")
}

// BenchmarkAPIBatch1000 measures POST /api/v1/messages with 1,000
// recipients per request (4 concurrent clients) against its anchor, the
// file ingest of the same rows (a CSV of the same recipients and variables
// dropped into the template's inbox folder) in the same run: recipients/s
// of each and their ratio (the goal is >= 0.5). DROPGATE_BENCH_ROWS rows
// each (default 200,000).
//
//	go test ./server/admin -run '^$' -bench APIBatch1000 -benchtime 1x
func BenchmarkAPIBatch1000(b *testing.B) {
	sb := newSendBench(b)
	rows := envInt("DROPGATE_BENCH_ROWS", 200_000) / 1000 * 1000
	batch := func(i int) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"partner":"acme","template":"otp","recipients":[`)
		for j := range 1000 {
			if j > 0 {
				buf.WriteByte(',')
			}
			n := i*1000 + j
			fmt.Fprintf(&buf, `{"to":"+35191%07d","ref":"r%d","vars":{"name":"Ana","code":"%06d"}}`, n, n, n%1_000_000)
		}
		buf.WriteString(`]}`)
		return buf.Bytes()
	}
	bodies := make([][]byte, rows/1000)
	for i := range bodies {
		bodies[i] = batch(i)
	}
	sb.run(b, 4, 2, func(i int) []byte { return bodies[i] })
	b.ResetTimer()
	var apiRates, fileRates, ratios, apiCPU, fileCPU []float64
	for n := range b.N {
		c0 := cpuTime()
		_, wall := sb.run(b, 4, len(bodies), func(i int) []byte { return bodies[i] })
		c1 := cpuTime()
		api := float64(rows) / wall.Seconds()
		file := sb.ingestFile(b, fmt.Sprintf("anchor-%d.csv", n), rows)
		c2 := cpuTime()
		apiRates, fileRates, ratios = append(apiRates, api), append(fileRates, file), append(ratios, api/file)
		apiCPU, fileCPU = append(apiCPU, float64((c1-c0).Nanoseconds())/float64(rows)), append(fileCPU, float64((c2-c1).Nanoseconds())/float64(rows))
	}
	b.StopTimer()
	// CPU time per row (the whole process: HTTP client and server too for
	// the API) is what a loaded machine does not change.
	b.ReportMetric(median(apiCPU)/1000, "api_cpu_us/row")
	b.ReportMetric(median(fileCPU)/1000, "file_cpu_us/row")
	b.ReportMetric(median(apiCPU)/median(fileCPU), "cpu_api/file")
	b.ReportMetric(median(apiRates), "api_rows/s")
	b.ReportMetric(median(fileRates), "file_rows/s")
	b.ReportMetric(median(ratios), "api/file")
}

// ingestFile drops a CSV of rows recipients into the otp template's inbox
// folder and returns the rows/s from the drop to its job being queued.
func (sb *sendBench) ingestFile(b *testing.B, name string, rows int) float64 {
	b.Helper()
	staging := filepath.Join(b.TempDir(), name)
	f, err := os.Create(staging)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("phone,ref,name,code\n")
	for n := range rows {
		fmt.Fprintf(w, "+35191%07d,r%d,Ana,%06d\n", n, n, n%1_000_000)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	dir := filepath.Join(sb.cfg.PartnerHome("acme"), "inbox", "otp")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := os.Rename(staging, filepath.Join(dir, name)); err != nil {
		b.Fatal(err)
	}
	sb.in.FileComplete("acme", "inbox/otp/"+name)
	deadline := start.Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		jobs, err := sb.st.ListJobs(context.Background(), store.JobFilter{Source: store.SourceFile, Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 1 && jobs[0].FileName == "inbox/otp/"+name && jobs[0].Status != store.JobIngesting {
			if jobs[0].Total != rows {
				b.Fatalf("file job %d has %d messages; want %d", jobs[0].ID, jobs[0].Total, rows)
			}
			return float64(rows) / time.Since(start).Seconds()
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("%s not queued in 10 minutes", name)
	return 0
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
