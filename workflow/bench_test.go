package workflow

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
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/server/admin"
	"github.com/dropgate/dropgate/store"
)

// The workflow benchmarks (workflow/BENCHMARKS.md). Run them alone:
//
//	go test ./workflow -run '^$' -bench BenchmarkEventsVsIngest -benchtime=1x
//	go test ./workflow -run '^$' -bench BenchmarkFire100kDueAtOnce -benchtime=1x
//	go test ./workflow -run '^$' -bench BenchmarkRSSWith1MWaitingRuns -benchtime=1x
//
// DROPGATE_BENCH_ROWS changes the row/event count (default 100,000; the
// RSS benchmark's runs: DROPGATE_BENCH_RUNS, default 1,000,000);
// DROPGATE_BENCH_EVENTS_SHAPE=random gives the events UUID ids and
// contacts in no order, as partners send them.

const benchToken = "bench-admin-token-0123456789"

func benchRows(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchEnv is a store, an ingester watching the partner homes, an engine
// on a fake clock (the scheduler not running) and the admin API.
type benchEnv struct {
	cfg   *config.Config
	st    *store.Store
	in    *ingest.Ingester
	eng   *Engine
	clock *fakeClock
	api   *httptest.Server
	ctx   context.Context
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{benchToken}
	cfg.Admin.MaxBody = 8 << 20
	cfg.Ingest.QuietPeriod = config.Duration(100 * time.Millisecond)
	cfg.Storage.MinFree = "1MiB"
	cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Channels: []string{"sms"}, MaxRows: 10_000_000}}
	cfg.Workflows = []config.Workflow{{Name: "welcome", Partner: "acme", On: "signup",
		Steps: []config.WorkflowStep{{Delay: "1h"}, {Send: &config.WorkflowSend{Template: "otp"}}}}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.DiscardHandler)
	in, err := ingest.New(ingest.Options{Config: cfg, Store: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	inDone := make(chan error, 1)
	go func() { inDone <- in.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-inDone })
	if _, _, err := in.PutTemplate(ctx, "acme", "otp", "channel: sms\n---\nOla {{.name}}, o seu codigo e {{.code}}.\n"); err != nil {
		b.Fatal(err)
	}
	clock := newFakeClock(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	eng, err := New(Options{Config: cfg, Store: st, Composer: in, Clock: clock, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	adm, err := admin.New(admin.Options{Config: cfg, Store: st, Logger: quiet, Workflows: eng, CheckEvents: in.CheckEvents})
	if err != nil {
		b.Fatal(err)
	}
	adm.Close() // the bound listener is not used: the benchmark uses httptest's
	api := httptest.NewServer(adm.Handler())
	b.Cleanup(api.Close)
	return &benchEnv{cfg: cfg, st: st, in: in, eng: eng, clock: clock, api: api, ctx: ctx}
}

// postEvents sends n signup events through POST /api/v1/events in batches
// of 1,000, ids from first.
func (e *benchEnv) postEvents(b *testing.B, first, n int) {
	b.Helper()
	hc := &http.Client{}
	for start := 0; start < n; start += 1000 {
		if err := e.postEventsRequest(hc, first+start, min(1000, n-start)); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's CPU time so far (user and system): what a phase
// costs whatever else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perItem is d per item in microseconds.
func perItem(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }

// ingestFile drops an n-row recipient file for the otp template and waits
// until its job is queued; it returns the time and the CPU time taken.
func (e *benchEnv) ingestFile(b *testing.B, name string, n int) (time.Duration, time.Duration) {
	b.Helper()
	return e.ingestFileFrom(b, name, 0, n)
}

// ingestFileFrom is ingestFile with the file's numbers counted from first
// (another file's content: the same would be refused as a duplicate).
func (e *benchEnv) ingestFileFrom(b *testing.B, name string, first, n int) (time.Duration, time.Duration) {
	b.Helper()
	dir := filepath.Join(e.cfg.PartnerHome("acme"), "inbox", "otp")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".part")
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("phone,name,code\n")
	for i := first; i < first+n; i++ {
		fmt.Fprintf(w, "+35192%07d,user %d,%06d\n", i, i, i%1_000_000)
	}
	w.Flush()
	f.Close()
	before, _ := e.st.ListJobs(e.ctx, store.JobFilter{Source: store.SourceFile})
	cpu0 := cpuTime()
	start := time.Now()
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		b.Fatal(err)
	}
	for {
		jobs, err := e.st.ListJobs(e.ctx, store.JobFilter{Source: store.SourceFile})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) > len(before) && jobs[0].Status != store.JobIngesting {
			if jobs[0].Total != n {
				b.Fatalf("file job has %d messages, want %d", jobs[0].Total, n)
			}
			return time.Since(start), cpuTime() - cpu0
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatal("the file was not ingested within 10 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkEventsVsIngest accepts N events through the API in batches of
// 1,000 (each stored with its run) and ingests an N-row recipient file,
// in the same run, and reports both rates and their ratio: first with one
// client posting its requests one after the other (seq), then with
// eventsConns clients posting at the same time (conc), the same N events
// again under other ids. The file is ingested before the events and
// another one after them, and each rate is compared with the file's over
// both: this machine's speed drifts by a third from one half-second to
// the next, and one file's time alone made the ratio swing by as much
// (workflow/BENCHMARKS.md, session 12). DROPGATE_BENCH_EVENTS_PROFILE
// writes a CPU profile of the two events phases alone.
func BenchmarkEventsVsIngest(b *testing.B) {
	n := benchRows("DROPGATE_BENCH_ROWS", 100_000)
	for it := 0; it < b.N; it++ {
		e := newBenchEnv(b)
		fileBefore, fileCPU := e.ingestFile(b, "list.csv", n)
		stop := startProfile(b, "DROPGATE_BENCH_EVENTS_PROFILE")
		type phase struct {
			name        string
			conns       int
			first       int
			time, cpu   time.Duration
			busy        time.Duration
			calls, txns int64
		}
		phases := []phase{{name: "seq", conns: 1, first: 0}, {name: "conc", conns: eventsConns, first: n}}
		for i := range phases {
			p := &phases[i]
			g0 := eventGroups(e.st)
			cpu0 := cpuTime()
			start := time.Now()
			e.postEventsConcurrently(b, p.first, n, p.conns)
			p.time, p.cpu = time.Since(start), cpuTime()-cpu0
			g1 := eventGroups(e.st)
			p.busy, p.calls, p.txns = g1.Busy-g0.Busy, g1.Calls-g0.Calls, g1.Transactions-g0.Transactions
		}
		stop()
		afterIdle()
		fileAfter, fileCPU2 := e.ingestFileFrom(b, "list2.csv", n, n)
		fileTime := (fileBefore + fileAfter) / 2
		fileRate := float64(n) / fileTime.Seconds()
		b.ReportMetric(fileRate, "file-rows/s")
		b.ReportMetric(perItem((fileCPU+fileCPU2)/2, n), "cpu-µs/row")
		b.Logf("%d-row files: before the events %v, after them %v (%.0f rows/s over both)", n, fileBefore, fileAfter, fileRate)
		for _, p := range phases {
			eventRate := float64(n) / p.time.Seconds()
			b.ReportMetric(eventRate, p.name+"-events/s")
			b.ReportMetric(eventRate/fileRate, p.name+"-events/file")
			b.ReportMetric(perItem(p.cpu, n), p.name+"-cpu-µs/event")
			b.Logf("%d events through the API with %d connection(s) %v (%.0f events/s, CPU %.1f µs/event, client included, %d requests in %d transactions, writer busy %.1f µs/event = %.0f%% of the time), ratio %.2f",
				n, p.conns, p.time, eventRate, perItem(p.cpu, n), p.calls, p.txns, perItem(p.busy, n), 100*p.busy.Seconds()/p.time.Seconds(), eventRate/fileRate)
			if p.busy > 0 {
				b.ReportMetric(perItem(p.busy, n), p.name+"-writer-µs/event")
			}
		}
	}
}

// eventGroups is store.EventGroups where the store has it (not in the
// base binary of an A/B run, which reports 0).
func eventGroups(st any) store.EventGroupStats {
	if g, ok := st.(interface{ EventGroups() store.EventGroupStats }); ok {
		return g.EventGroups()
	}
	return store.EventGroupStats{}
}

// randomEventsShape (DROPGATE_BENCH_EVENTS_SHAPE=random) posts events
// with UUID ids and contacts in random order instead of counting ones.
var randomEventsShape = os.Getenv("DROPGATE_BENCH_EVENTS_SHAPE") == "random"

// splitmix is a 64-bit mix of x (SplitMix64's finalizer).
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// eventsConns is how many connections the concurrent shape of
// BenchmarkEventsVsIngest posts with: an event producer with a few
// workers.
const eventsConns = 4

// postEventsConcurrently posts n signup events, ids from first, in
// requests of 1,000 taken in turn by conns clients, each posting its next
// request when its previous one is answered.
func (e *benchEnv) postEventsConcurrently(b *testing.B, first, n, conns int) {
	b.Helper()
	if conns == 1 {
		e.postEvents(b, first, n)
		return
	}
	next := make(chan int)
	errs := make(chan error, conns)
	for range conns {
		go func() {
			hc := &http.Client{}
			for start := range next {
				if err := e.postEventsRequest(hc, first+start, min(1000, n-start)); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	for start := 0; start < n; start += 1000 {
		next <- start
	}
	close(next)
	for range conns {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

// postEventsRequest posts one request of n signup events, ids from first,
// as postEvents does.
func (e *benchEnv) postEventsRequest(hc *http.Client, first, n int) error {
	// The request is sized before it is written: the client runs in the
	// benchmark's process, and its buffer's doublings were a tenth of the
	// garbage the server's collector then had to keep up with.
	var buf bytes.Buffer
	buf.Grow(64 + 128*n)
	buf.WriteString(`{"partner": "acme", "events": [`)
	for k := first; k < first+n; k++ {
		if k > first {
			buf.WriteByte(',')
		}
		if randomEventsShape {
			// Ids as clients make them (UUIDs) and contacts in no order:
			// each batch's index entries land all over both indexes.
			a, b := splitmix(uint64(k)), splitmix(uint64(k)^0x5bd1e995)
			fmt.Fprintf(&buf, `{"id": "%08x-%04x-4%03x-a%03x-%012x", "event": "signup", "phone": "+35191%07d", "data": {"name": "user %d", "code": "%06d"}}`,
				a>>32, a>>16&0xffff, a&0xfff, b>>52, b&0xffffffffffff, (k*7919+12345)%10_000_000, k, k%1_000_000)
			continue
		}
		fmt.Fprintf(&buf, `{"id": "s-%d", "event": "signup", "phone": "+35191%07d", "data": {"name": "user %d", "code": "%06d"}}`, k, k%10_000_000, k, k%1_000_000)
	}
	buf.WriteString(`]}`)
	req, _ := http.NewRequest("POST", e.api.URL+"/api/v1/events", &buf)
	req.Header.Set("Authorization", "Bearer "+benchToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /api/v1/events: %d %.300s", resp.StatusCode, body)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// startProfile starts a CPU profile into the file the environment
// variable names, if any, and returns what stops it.
func startProfile(b *testing.B, env string) func() {
	path := os.Getenv(env)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// BenchmarkFire100kDueAtOnce stores N runs due at the same instant, moves
// the fake clock there and times the scheduler until the first workflow
// job is queued and until no run waits; it ingests an N-row recipient
// file before the runs and another after them, in the same run, for
// comparison.
func BenchmarkFire100kDueAtOnce(b *testing.B) {
	n := benchRows("DROPGATE_BENCH_ROWS", 100_000)
	for it := 0; it < b.N; it++ {
		e := newBenchEnv(b)
		fileBefore, fileCPU := e.ingestFile(b, "list.csv", n)
		e.postEvents(b, 0, n)
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(e.ctx)
		go func() { done <- e.eng.Run(ctx) }()
		stopProfile := startFireProfile(b)
		cpu0 := cpuTime()
		start := time.Now()
		e.clock.Advance(time.Hour)
		var first time.Duration
		for {
			if first == 0 {
				if jobs, _ := e.st.ListJobs(e.ctx, store.JobFilter{Source: store.SourceWorkflow, Limit: 1}); len(jobs) > 0 {
					first = time.Since(start)
				}
			}
			if _, ok, _ := e.st.NextRunDue(e.ctx); !ok {
				break
			}
			time.Sleep(time.Millisecond)
		}
		all, allCPU := time.Since(start), cpuTime()-cpu0
		stopProfile()
		cancel()
		<-done
		counts, _ := e.st.RunCounts(e.ctx, "acme")
		if counts["acme"]["welcome"][store.RunDone] != n {
			b.Fatalf("runs %v, want %d done", counts, n)
		}
		// As in BenchmarkEventsVsIngest, the file's time is that of one file
		// before and one after, against the machine's drift.
		afterIdle()
		fileAfter, fileCPU2 := e.ingestFileFrom(b, "list2.csv", n, n)
		fileTime, fileCPU := (fileBefore+fileAfter)/2, (fileCPU+fileCPU2)/2
		b.Logf("%d-row files: before the runs %v, after them %v", n, fileBefore, fileAfter)
		b.ReportMetric(first.Seconds()*1000, "ms-to-first")
		b.ReportMetric(all.Seconds(), "s-all-queued")
		b.ReportMetric(fileTime.Seconds(), "s-file")
		b.ReportMetric(perItem(allCPU, n), "cpu-µs/run")
		b.ReportMetric(perItem(fileCPU, n), "cpu-µs/row")
		b.Logf("%d runs due at once: first message queued after %v, all after %v (%.2f× the %v of ingesting a %d-row file); CPU %.1f µs/run, %.1f µs/file row",
			n, first, all, all.Seconds()/fileTime.Seconds(), fileTime, n, perItem(allCPU, n), perItem(fileCPU, n))
	}
}

// afterIdle waits for the store's idle-time work after a phase: the end
// of an event burst (1 s without events), then the checkpointer's copy
// of the WAL (it looks every 200 ms). A file timed right after the
// phase paid for it (1.06 s instead of 0.37–0.57 once, after firing),
// while the file before the phase never does.
func afterIdle() { time.Sleep(1500 * time.Millisecond) }

// startFireProfile profiles the firing phase alone (not the file or the
// events before it) into the file DROPGATE_BENCH_FIRE_PROFILE names, if
// set; the returned func stops it.
func startFireProfile(b *testing.B) func() {
	path := os.Getenv("DROPGATE_BENCH_FIRE_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// BenchmarkRSSWith1MWaitingRuns stores N waiting runs (through the store,
// in batches of 10,000), runs the scheduler while they wait, and reports
// the process's RSS: the scheduler reads the due index, it does not hold
// runs.
func BenchmarkRSSWith1MWaitingRuns(b *testing.B) {
	n := benchRows("DROPGATE_BENCH_RUNS", 1_000_000)
	for it := 0; it < b.N; it++ {
		e := newBenchEnv(b)
		due := e.clock.Now().Add(time.Hour)
		for start := 0; start < n; start += 10_000 {
			ws := make([]store.EventWrite, 0, 10_000)
			for i := start; i < min(start+10_000, n); i++ {
				ws = append(ws, store.EventWrite{
					Event: store.Event{Partner: "acme", Name: "signup", Phone: "+35191" + fmt.Sprintf("%07d", i), Source: store.EventFromAPI,
						Data: map[string]string{"name": "user", "code": "123456"}},
					Starts: []store.RunStart{{Workflow: "welcome", Step: 1, DueAt: due.Add(time.Duration(i) * time.Millisecond)}}})
			}
			if _, err := e.st.AcceptEvents(e.ctx, ws, e.clock.Now()); err != nil {
				b.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- e.eng.Run(ctx) }()
		// Let the scheduler read the index and go to sleep, then fire the
		// first 1,000 runs so that it has worked among a million.
		time.Sleep(time.Second)
		e.clock.Advance(time.Hour + time.Second)
		for {
			counts, _ := e.st.RunCounts(e.ctx, "acme")
			if counts["acme"]["welcome"][store.RunDone] >= 1000 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		debug.FreeOSMemory()
		rss := vmRSS(b)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		cancel()
		<-done
		b.ReportMetric(float64(rss)/(1<<20), "MiB-RSS")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
		b.Logf("%d waiting runs (1,000+ fired): RSS %.1f MiB, Go heap in use %.1f MiB", n, float64(rss)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	}
}

// vmRSS reads the process's resident set from /proc.
func vmRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
