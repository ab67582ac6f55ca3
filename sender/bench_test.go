package sender

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// benchMessages is how many messages each delivery benchmark sends.
const benchMessages = 100_000

// benchConcurrency is the workers of both the bare client and the channel.
const benchConcurrency = 4

// newBenchSink is a minimal local provider: it reads the request and
// answers with a small JSON id, counting requests.
func newBenchSink(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"p1"}`)
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

// bareClientRate posts benchMessages small JSON requests from
// benchConcurrency goroutines with a plain net/http client: the ceiling a
// sender could reach against this sink on this machine.
func bareClientRate(b *testing.B, url string) float64 {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = benchConcurrency
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for i := next.Add(1); i <= benchMessages; i = next.Add(1) {
				body := fmt.Sprintf(`{"to": "+1555%07d", "body": "hello %d", "id": "dgbench-%d"}`, i, i, i)
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("dgbench-%d", i))
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return benchMessages / time.Since(start).Seconds()
}

// cpuTime is the CPU time (user and system) this process used so far. On
// a machine shared with other work, throughput follows the share of the
// cores a run gets; CPU time per message does not, so the benchmark
// reports both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mallocs is how many heap objects this process allocated so far: unlike
// time, the count per message does not move with the machine's load, and
// each allocation costs its share of the garbage collector's work.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// senderRun is what senderRate measured: messages per second, and the
// process's CPU time and heap allocations while the sender ran.
type senderRun struct {
	rate   float64
	cpu    time.Duration
	allocs uint64
}

// benchStore is a validated configuration with the one channel cc over a
// temporary data dir, and a store there, closed when the benchmark ends.
func benchStore(b *testing.B, cc config.Channel) (*config.Config, *store.Store) {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Sender.PollInterval = config.Duration(10 * time.Millisecond)
	cfg.Channels = []config.Channel{cc}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), cfg.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return cfg, st
}

// senderRate queues benchMessages messages (not timed), runs a Sender until
// the job is done, and returns messages per second with every status
// persisted, and the process's CPU time and allocations meanwhile.
func senderRate(b *testing.B, cc config.Channel, opts ...func(*Options)) senderRun {
	cfg, st := benchStore(b, cc)
	msgs := make([]store.Message, benchMessages)
	for i := range msgs {
		to := fmt.Sprintf("+1555%07d", i)
		if cc.Type == config.ChannelSMTP {
			to = fmt.Sprintf("r%d@example.com", i)
		}
		msgs[i] = store.Message{Channel: cc.Name, Recipient: to, Body: fmt.Sprintf("hello %d", i), Subject: "hello"}
	}
	j, _, err := st.CreateJob(context.Background(), store.Job{Partner: "bench", Source: store.SourceFile, Priority: store.PriorityBulk}, msgs)
	if err != nil {
		b.Fatal(err)
	}
	o := Options{Config: cfg, Store: st}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start, cpu, allocs := time.Now(), cpuTime(), mallocs()
	go func() { done <- s.Run(ctx) }()
	// Poll the job's status only: counting 100,000 messages every few
	// milliseconds would cost more than the sender itself.
	for {
		status, err := st.JobStatus(context.Background(), j.ID)
		if err != nil {
			b.Fatal(err)
		}
		if status == store.JobDone {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu = cpuTime() - cpu
	allocs = mallocs() - allocs
	cancel()
	<-done
	if got, _ := st.Job(context.Background(), j.ID); got.Counts[store.MsgSent] != benchMessages {
		b.Fatalf("job = %+v", got)
	}
	return senderRun{rate: benchMessages / elapsed.Seconds(), cpu: cpu, allocs: allocs}
}

// BenchmarkHTTPDelivery compares a bare client loop with the sender over
// the same local sink and concurrency. Run it once:
//
//	go test ./sender -run '^$' -bench 'Delivery' -benchtime 1x
func BenchmarkHTTPDelivery(b *testing.B) {
	srv, hits := newBenchSink(b)
	// The bare loop runs before and after the sender and the two are
	// averaged: on a shared machine the ceiling itself drifts.
	cpu0, allocs0 := cpuTime(), mallocs()
	bare1 := bareClientRate(b, srv.URL+"/v1/messages")
	bareCPU, bareAllocs := cpuTime()-cpu0, mallocs()-allocs0
	hits.Store(0)
	cc := config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: srv.URL + "/v1/messages", IDPath: "/id", Concurrency: benchConcurrency}
	run := senderRate(b, cc)
	sent, senderCPU := run.rate, run.cpu
	if hits.Load() < benchMessages {
		b.Fatalf("sink saw %d requests", hits.Load())
	}
	cpu1, allocs1 := cpuTime(), mallocs()
	bare2 := bareClientRate(b, srv.URL+"/v1/messages")
	bareCPU = (bareCPU + cpuTime() - cpu1) / 2
	bareAllocs = (bareAllocs + mallocs() - allocs1) / 2
	bare := (bare1 + bare2) / 2
	b.ReportMetric(bare1, "bare_before_msgs/s")
	b.ReportMetric(bare2, "bare_after_msgs/s")
	b.ReportMetric(sent, "sender_msgs/s")
	b.ReportMetric(sent/bare, "ratio")
	// CPU per message, the sink's included in both: the share of the
	// ratio a busy machine cannot move.
	b.ReportMetric(float64(bareCPU.Microseconds())/benchMessages, "bare_cpu_us/msg")
	b.ReportMetric(float64(senderCPU.Microseconds())/benchMessages, "sender_cpu_us/msg")
	b.ReportMetric(float64(bareCPU)/float64(senderCPU), "cpu_ratio")
	// Heap allocations per message, the sink's included in both: a figure
	// the machine's load does not move.
	b.ReportMetric(float64(bareAllocs)/benchMessages, "bare_allocs/msg")
	b.ReportMetric(float64(run.allocs)/benchMessages, "sender_allocs/msg")
}

// BenchmarkSMTPDelivery sends through the in-process SMTP sink over
// benchConcurrency pooled connections (STARTTLS and AUTH PLAIN).
func BenchmarkSMTPDelivery(b *testing.B) {
	k := newSMTPSink(b)
	cc := config.Channel{Name: "email", Type: config.ChannelSMTP, Host: "127.0.0.1", Port: k.port, TLS: "starttls",
		Username: "apikey", Password: "s3cret", From: "a@acme.example", Concurrency: benchConcurrency}
	run := senderRate(b, cc, func(o *Options) { o.SMTPTLSConfig = k.client })
	b.ReportMetric(run.rate, "smtp_msgs/s")
}

// BenchmarkManyAPIJobs sends 3,000 one-message transactional jobs (a burst
// of POST /api/v1/messages, each its own job) through the http channel:
// claims span jobs, and jobs end many at a time.
//
//	go test ./sender -run '^$' -bench ManyAPIJobs -benchtime 1x
func BenchmarkManyAPIJobs(b *testing.B) {
	srv, hits := newBenchSink(b)
	cfg, st := benchStore(b, config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: srv.URL + "/v1/messages", IDPath: "/id",
		Concurrency: benchConcurrency})
	const n = 3000
	var jobs []int64
	for i := range n {
		j, _, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI, Priority: store.PriorityTransactional},
			[]store.Message{{Channel: "sms", Recipient: fmt.Sprintf("+1555%07d", i), Body: "hi"}})
		if err != nil {
			b.Fatal(err)
		}
		jobs = append(jobs, j.ID)
	}
	s, err := New(Options{Config: cfg, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	for _, id := range jobs { // oldest first, so mostly one look each
		for {
			status, err := st.JobStatus(context.Background(), id)
			if err != nil {
				b.Fatal(err)
			}
			if status == store.JobDone {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	cancel()
	<-done
	if hits.Load() < n {
		b.Fatalf("sink saw %d requests", hits.Load())
	}
	b.ReportMetric(n/elapsed.Seconds(), "msgs/s")
}
