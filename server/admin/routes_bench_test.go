package admin

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// BenchmarkRoutesWhileAJobSends measures GET /api/v1/jobs, /metrics and the
// console's overview (GET /) on a generated database (routesDB: 10,000
// jobs, 9,899 finished, 100 queued and one large file job of
// DROPGATE_BENCH_MESSAGES queued messages, default 10,000,000): first
// idle, then while that large job is claimed and completed as the sender
// does (one claimer, 256 at a time). It reports p50 and p99 per route and
// phase; the target is p99 <= 50 ms.
//
//	go test ./server/admin -run '^$' -bench RoutesWhileAJobSends -benchtime 1x
func BenchmarkRoutesWhileAJobSends(b *testing.B) {
	ctx := context.Background()
	large := envInt("DROPGATE_BENCH_MESSAGES", 10_000_000)
	st, err := store.Open(ctx, routesDB(b, large))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const bigJob = 10_000

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
	startSending := func() {
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
	}

	// The console's overview needs a signed-in session.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if resp, err := browser.PostForm(ts.URL+"/login", url.Values{"token": {adminToken}}); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("sign in: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body) // the overview it lands on: hanging up would be a broken pipe
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
	// Idle: only the requests.
	idle := map[string]float64{}
	for _, r := range []struct{ path, name string }{{"/api/v1/jobs", "jobs"}, {"/metrics", "metrics"}, {"/", "overview"}} {
		measure(r.path, 20) // warm the caches
		p50, p99 := measure(r.path, 200)
		idle["idle-"+r.name+"-p50-ms"] = float64(p50.Microseconds()) / 1000
		idle["idle-"+r.name+"-p99-ms"] = float64(p99.Microseconds()) / 1000
	}
	startSending()
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
	for name, v := range idle { // reported after the loop, which clears them
		b.ReportMetric(v, name)
	}
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

// routesDBVersion changes whenever generateRoutesDB makes a different
// database, so a cached copy of an older shape is not reused.
const routesDBVersion = 1

// routesDB returns a working copy of a generated database of 10,000 jobs —
// 9,899 two-message API jobs sent and finished, 100 queued, and one file
// job of large queued messages — with a full day of per-minute chart rows.
// It is written with direct SQL (recursive CTEs), not through the store's
// insert paths, so that 10,000,000 messages take about a minute instead of
// most of an hour; the generated file is kept under os.TempDir, named by
// the schema version, this generator's version and large, and copied for
// each run (the benchmark changes its copy).
func routesDB(b *testing.B, large int) string {
	b.Helper()
	ctx := context.Background()
	// The schema version: the newest migration a fresh store applies.
	probe := filepath.Join(b.TempDir(), "probe.db")
	st, err := store.Open(ctx, probe)
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	schema := sqliteScalar(b, probe, `SELECT MAX(version) FROM schema_migrations`)
	cached := filepath.Join(os.TempDir(), fmt.Sprintf("dropgate-bench-routes-s%d-g%d-%d.db", schema, routesDBVersion, large))
	if _, err := os.Stat(cached); err != nil {
		t0 := time.Now()
		tmp := cached + ".part"
		os.Remove(tmp)
		if err := copyFile(probe, tmp); err != nil {
			b.Fatal(err)
		}
		generateRoutesDB(b, tmp, large)
		if err := os.Rename(tmp, cached); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %s in %v", cached, time.Since(t0).Round(time.Second))
	}
	work := filepath.Join(b.TempDir(), "db")
	if err := copyFile(cached, work); err != nil {
		b.Fatal(err)
	}
	return work
}

// generateRoutesDB fills a fresh, closed store's database at path.
func generateRoutesDB(b *testing.B, path string, large int) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(DELETE)&_pragma=synchronous(OFF)&_pragma=cache_size(-200000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UnixMilli()
	const small, finished = 9_999, 9_899
	stmts := []string{
		`BEGIN`,
		// Jobs 1..9,999, made over the last day, two messages each: the
		// first 9,899 sent and finished.
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %[1]d)
		INSERT INTO jobs (id, partner, source, status, priority, total, templates, created_at, started_at, finished_at, first_message_id, last_message_id)
		SELECT i, 'p' || (i %% 10), 'api', IIF(i <= %[2]d, 'done', 'queued'), 0, 2, 'otp@1',
			%[3]d - (%[1]d - i) * 8000, IIF(i <= %[2]d, %[3]d - (%[1]d - i) * 8000 + 50, NULL), IIF(i <= %[2]d, %[3]d - (%[1]d - i) * 8000 + 90, NULL),
			2 * i - 1, 2 * i FROM n`, small, finished, now),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %[1]d)
		INSERT INTO messages (id, job_id, channel, recipient, body, status, attempts, next_attempt_at, provider_id, sent_at, updated_at)
		SELECT 2 * i - 1 + c, i, IIF(c = 0, 'sms', 'email'), IIF(c = 0, '+35191' || printf('%%07d', i), 'a' || i || '@example.com'), 'Hi Ana, your code is 1234.',
			IIF(i <= %[2]d, 'sent', 'queued'), IIF(i <= %[2]d, 1, 0), %[3]d - (%[1]d - i) * 8000, IIF(i <= %[2]d, 'p-' || i, ''),
			IIF(i <= %[2]d, %[3]d - (%[1]d - i) * 8000 + 80, NULL), %[3]d - (%[1]d - i) * 8000
		FROM n CROSS JOIN (SELECT 0 AS c UNION ALL SELECT 1)`, small, finished, now),
		`INSERT INTO job_counts (job_id, channel, status, n) SELECT job_id, channel, status, COUNT(*) FROM messages GROUP BY job_id, channel, status`,
		// The finished jobs' messages, as the finish trigger adds them.
		`INSERT INTO status_totals (kind, channel, status, n)
		SELECT 'messages', c.channel, c.status, SUM(c.n) FROM job_counts c JOIN jobs j ON j.id = c.job_id WHERE j.finished_at IS NOT NULL GROUP BY c.channel, c.status`,
		// The large job, from a file uploaded an hour ago, queued.
		fmt.Sprintf(`INSERT INTO files (id, partner, name, size, sha256, status, rows_total, job_id, created_at, updated_at)
		VALUES (1, 'big', 'inbox/big.csv', %[1]d * 40, 'ab', 'queued', %[1]d, 10000, %[2]d - 3600000, %[2]d - 3600000)`, large, now),
		fmt.Sprintf(`INSERT INTO jobs (id, partner, source, file_id, file_name, status, priority, total, templates, created_at, first_message_id, last_message_id)
		VALUES (10000, 'big', 'file', 1, 'inbox/big.csv', 'queued', 1, %[1]d, 'promo@3', %[2]d - 3600000, 20001, 20000 + %[1]d)`, large, now),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %[1]d)
		INSERT INTO messages (id, job_id, channel, line, recipient, body, status, next_attempt_at, updated_at)
		SELECT 20000 + i, 10000, 'sms', i + 1, '+35191' || printf('%%07d', i %% 10000000), 'hello, this is a bulk message', 'queued', %[2]d - 3600000, %[2]d - 3600000 FROM n`, large, now),
		fmt.Sprintf(`INSERT INTO job_counts (job_id, channel, status, n) VALUES (10000, 'sms', 'queued', %d)`, large),
		// A day of the overview's per-minute chart, both channels.
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1440)
		INSERT INTO channel_minutes (channel, minute, sent, failed)
		SELECT ch, %d / 60000 - i, 20 + i %% 7, i %% 3 FROM n CROSS JOIN (SELECT 'sms' AS ch UNION ALL SELECT 'email')`, now),
		`COMMIT`,
		`PRAGMA journal_mode = WAL`,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			b.Fatalf("generating the database: %v\n%s", err, q)
		}
	}
}

// sqliteScalar reads one integer from the database at path.
func sqliteScalar(b *testing.B, path, q string) int64 {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// copyFile copies a closed database file (its -wal was checkpointed into it
// on close).
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
