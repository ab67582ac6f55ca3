package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// BenchmarkRoutesWhileAJobSends measures GET /api/v1/jobs, /metrics and the
// console's overview (GET /) on
// a generated database (10,000 jobs: 9,899 finished, 100 queued and one
// large one) while that large
// job is being claimed and completed as the sender does (one claimer, 256
// at a time). It reports p50 and p99 per route; the target is p99 <= 50 ms.
// The large job's size is
// DROPGATE_BENCH_MESSAGES (default 1,000,000):
//
//	DROPGATE_BENCH_MESSAGES=3000000 go test ./server/admin -run '^$' -bench RoutesWhileAJobSends -benchtime 1x
func BenchmarkRoutesWhileAJobSends(b *testing.B) {
	ctx := context.Background()
	large := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_MESSAGES")); err == nil && v > 0 {
		large = v
	}
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// 9,999 small jobs: all but the last 100 sent and finished, as on a
	// server that has run a while.
	for i := range 9_999 {
		msgs := []store.Message{{Channel: "sms", Recipient: "+351912345678", Body: "hi"}, {Channel: "email", Recipient: "a@example.com", Body: "hi"}}
		j, _, err := st.CreateJob(ctx, store.Job{Partner: fmt.Sprintf("p%d", i%10), Source: store.SourceAPI, Priority: store.PriorityTransactional}, msgs)
		if err != nil {
			b.Fatal(err)
		}
		if i >= 9_899 {
			continue
		}
		var outs []store.Outcome
		for _, ch := range []string{"sms", "email"} {
			cs, err := st.ClaimMessages(ctx, j.ID, ch, time.Now(), time.Minute, 10)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range cs {
				outs = append(outs, store.Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt, Kind: store.OutcomeSent, At: time.Now()})
			}
		}
		if err := st.CompleteMessages(ctx, outs); err != nil {
			b.Fatal(err)
		}
		if _, err := st.FinishJob(ctx, j.ID); err != nil {
			b.Fatal(err)
		}
	}
	fileID, err := st.CreateFile(ctx, store.File{Partner: "big", Name: "inbox/big.csv"})
	if err != nil {
		b.Fatal(err)
	}
	w, err := st.BeginFileJob(ctx, "big", fileID, "inbox/big.csv", 5000)
	if err != nil {
		b.Fatal(err)
	}
	for i := range large {
		if err := w.Add(store.Message{Partner: "big", Channel: "sms", Line: i + 2, Recipient: "+351912345678", Body: "hello, this is a bulk message"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(ctx, large, nil); err != nil {
		b.Fatal(err)
	}
	bigJob := w.JobID()

	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	s, err := New(Options{Config: cfg, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s.Run(cctx)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	// The sender: claim 256, complete them sent, as long as the benchmark runs.
	sendCtx, stopSending := context.WithCancel(ctx)
	sent := make(chan int)
	go func() {
		n := 0
		defer func() { sent <- n }()
		for sendCtx.Err() == nil {
			cs, err := st.ClaimMessages(sendCtx, bigJob, "sms", time.Now(), time.Minute, 256)
			if err != nil || len(cs) == 0 {
				return
			}
			outs := make([]store.Outcome, len(cs))
			for i, c := range cs {
				outs[i] = store.Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt, Kind: store.OutcomeSent, ProviderID: "x", At: time.Now()}
			}
			if err := st.CompleteMessages(context.WithoutCancel(sendCtx), outs); err != nil {
				return
			}
			n += len(cs)
		}
	}()

	// The console's overview needs a signed-in session.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if resp, err := browser.PostForm(ts.URL+"/login", url.Values{"token": {adminToken}}); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("sign in: %v", err)
	} else {
		resp.Body.Close()
	}
	measure := func(path string, n int) (p50, p99 time.Duration) {
		var ds []time.Duration
		for range n {
			req, _ := http.NewRequest("GET", ts.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			t0 := time.Now()
			resp, err := browser.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(t0))
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d", path, resp.StatusCode)
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2], ds[len(ds)*99/100]
	}
	b.ResetTimer()
	for b.Loop() {
		j50, j99 := measure("/api/v1/jobs", 200)
		m50, m99 := measure("/metrics", 200)
		o50, o99 := measure("/", 200)
		b.ReportMetric(float64(o50.Microseconds())/1000, "overview-p50-ms")
		b.ReportMetric(float64(o99.Microseconds())/1000, "overview-p99-ms")
		b.ReportMetric(float64(j50.Microseconds())/1000, "jobs-p50-ms")
		b.ReportMetric(float64(j99.Microseconds())/1000, "jobs-p99-ms")
		b.ReportMetric(float64(m50.Microseconds())/1000, "metrics-p50-ms")
		b.ReportMetric(float64(m99.Microseconds())/1000, "metrics-p99-ms")
	}
	b.StopTimer()
	stopSending()
	b.ReportMetric(float64(<-sent), "msgs-sent-meanwhile")

	// Wall-clock percentiles on a shared machine measure its load as much
	// as the routes; the process's CPU time per request (server and the
	// in-process client together, the sender stopped) does not.
	cpu := func(path string, n int) float64 {
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		measure(path, n)
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		used := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
		return float64(used.Microseconds()) / 1000 / float64(n)
	}
	b.ReportMetric(cpu("/api/v1/jobs", 200), "jobs-cpu-ms/req")
	b.ReportMetric(cpu("/metrics", 200), "metrics-cpu-ms/req")
	b.ReportMetric(cpu("/", 200), "overview-cpu-ms/req")
}
