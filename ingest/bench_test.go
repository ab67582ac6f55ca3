package ingest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// The 1M-row benchmark. Run it alone:
//
//	DROPGATE_BENCH_RUNS=5 go test ./ingest -run '^$' -bench BenchmarkIngest1M -benchtime=1x
//
// It generates three CSV files of the same number of rows and, in each
// iteration, ingests each of them in a child process (the test binary
// re-executed, so that its peak RSS is that ingest's alone), measuring drop
// → every row checked, rendered and queued:
//
//   - national: phone, first_name, order_id, ref, city; PT mobiles written
//     in the partner's (PT) national format, 912345678;
//   - mixed: the real shape: mobiles of 12 countries, PT's written
//     nationally (with and without spaces), the others in E.164 with and
//     without separators or with 00, an email column, 10 variable columns,
//     a bad phone every 100,000 rows, on a skip_rows partner;
//   - e164: the national file with German mobiles in E.164,
//     +49151xxxxxxxx, foreign to the partner.
//
// and a bare batched insert of the national file's rows into the same
// schema (64-row INSERT statements, 5000 rows a transaction; see
// bareInsert). DROPGATE_BENCH_RUNS runs (1 unless set; not b.N, which the
// testing package first sets to 1 as a probe) go through the three ingests
// and the bare insert, in an order that alternates between runs; the
// reported metrics are medians over the runs, and each run logs its own
// figures and the ratios within it, and each child's CPU time (user and
// system), which a busy machine disturbs less than the wall time. DROPGATE_BENCH_ROWS changes the row
// count; DROPGATE_BENCH_BARE=0 skips the bare insert.

const (
	benchChildEnv     = "DROPGATE_INGEST_BENCH_CHILD"
	benchChildFileEnv = "DROPGATE_INGEST_BENCH_FILE"
)

const benchTemplate = "channel: sms\n---\nOla {{.first_name}}, a sua encomenda {{.order_id}} foi enviada.\n"

var benchNames = []string{"Ana", "Bruno", "Carla", "Duarte", "Eva", "Filipe", "Gabriela", "Hugo"}

// benchChildResult is what the child reports back.
type benchChildResult struct {
	Rows    int     `json:"rows"` // queued
	Bad     int     `json:"bad"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
	CPU     float64 `json:"-"` // the child's user and system time, read by the parent
}

// benchShape is one of the generated files.
type benchShape struct {
	name  string
	write func(path string, rows int) (bad int, err error)
}

var benchShapes = []benchShape{
	{"national", writeBenchCSV},
	{"mixed", writeMixedBenchCSV},
	{"e164", writeE164BenchCSV},
}

func BenchmarkIngest1M(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-row benchmark skipped in -short mode")
	}
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	src := b.TempDir()
	bads := map[string]int{}
	for _, sh := range benchShapes {
		bad, err := sh.write(filepath.Join(src, sh.name+".csv"), rows)
		if err != nil {
			b.Fatal(err)
		}
		bads[sh.name] = bad
	}
	runs := 1
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	rates := map[string][]float64{}
	rss := map[string][]float64{}
	cpu := map[string][]float64{}
	var bareRates []float64
	b.ResetTimer()
	for i := range b.N * runs {
		order := slices.Clone(benchShapes)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		line := fmt.Sprintf("run %d (load %s):", i+1, loadAvg())
		got := map[string]float64{}
		for _, sh := range order {
			res, maxRSS, err := runBenchChild(b.TempDir(), filepath.Join(src, sh.name+".csv"))
			if err != nil {
				b.Fatal(err)
			}
			if res.Rows != rows-bads[sh.name] || res.Bad != bads[sh.name] {
				b.Fatalf("%s: %d rows queued and %d bad, want %d and %d", sh.name, res.Rows, res.Bad, rows-bads[sh.name], bads[sh.name])
			}
			got[sh.name] = float64(rows) / res.Seconds
			rates[sh.name] = append(rates[sh.name], got[sh.name])
			rss[sh.name] = append(rss[sh.name], maxRSS)
			cpu[sh.name] = append(cpu[sh.name], res.CPU)
			line += fmt.Sprintf(" %s %.2fs %.0f rows/s (CPU %.2fs) %.1f MB;", sh.name, res.Seconds, got[sh.name], res.CPU, maxRSS)
		}
		line += fmt.Sprintf(" mixed/national %.2f, e164/national %.2f", got["mixed"]/got["national"], got["e164"]/got["national"])
		if os.Getenv("DROPGATE_BENCH_BARE") != "0" {
			// The baseline, in this process, through a fresh store's schema.
			// The bench partner's sms channel (the default, type outbox)
			// reads no variables, so the ingest stores none and neither
			// does the baseline: the national file's rows.
			bare, err := bareInsert(filepath.Join(b.TempDir(), "bare"), rows, false)
			if err != nil {
				b.Fatal(err)
			}
			r := float64(rows) / bare.Seconds()
			bareRates = append(bareRates, r)
			line += fmt.Sprintf("; bare insert %.2fs %.0f rows/s, national/bare %.2f", bare.Seconds(), r, got["national"]/r)
		}
		b.Log(line)
	}
	for _, sh := range benchShapes {
		b.ReportMetric(median(rates[sh.name]), sh.name+"-rows/s")
		b.ReportMetric(slices.Max(rss[sh.name]), sh.name+"-peak-RSS-MB")
	}
	b.ReportMetric(median(rates["mixed"])/median(rates["national"]), "mixed/national")
	b.ReportMetric(median(cpu["mixed"])/median(cpu["national"]), "mixed/national-CPU")
	if len(bareRates) > 0 {
		b.ReportMetric(median(bareRates), "bare-rows/s")
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAvg is the 1-minute load average, for the log.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// runBenchChild ingests file in a child process working in dir, and
// returns its result and peak RSS in MB.
func runBenchChild(dir, file string) (benchChildResult, float64, error) {
	var res benchChildResult
	if err := os.Link(file, filepath.Join(dir, "orders.csv")); err != nil {
		return res, 0, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIngestBenchChild$", "-test.v")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		return res, 0, fmt.Errorf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, "BENCH_RESULT "); ok {
			json.Unmarshal([]byte(j), &res)
		}
	}
	if res.Error != "" {
		return res, 0, fmt.Errorf("child: %s\n%s", res.Error, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return res, float64(ru.Maxrss) / 1024, nil // Maxrss: KiB on Linux
}

// TestIngestBenchChild is BenchmarkIngest1M's child process; it does nothing
// in a normal test run.
func TestIngestBenchChild(t *testing.T) {
	dir := os.Getenv(benchChildEnv)
	if dir == "" {
		t.Skip("only run by BenchmarkIngest1M")
	}
	if storetest.OnPostgres() {
		t.Skip("the benchmark's child runs once, on SQLite")
	}
	res, err := runBenchIngest(dir)
	if err != nil {
		res.Error = err.Error()
	}
	j, _ := json.Marshal(res)
	fmt.Printf("\nBENCH_RESULT %s\n", j)
}

// runBenchIngest drops dir/orders.csv into a partner's inbox as the
// embedded servers do (rename into place, then FileComplete) and waits until
// the file is queued.
func runBenchIngest(dir string) (benchChildResult, error) {
	var res benchChildResult
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Partners = []config.Partner{{Name: "bench", Region: "PT", Channels: []string{"sms"}, OnBadRows: config.SkipRows}}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return res, err
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return res, err
	}
	defer st.Close()
	in, err := New(Options{Config: cfg, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return res, err
	}
	home := cfg.PartnerHome("bench")
	if err := os.WriteFile(filepath.Join(home, "templates", "welcome.tmpl"), []byte(benchTemplate), 0o644); err != nil {
		return res, err
	}
	in.process(ctx, workItem{partner: "bench", rel: "templates/welcome.tmpl"})
	if err := os.MkdirAll(filepath.Join(home, "inbox", "welcome"), 0o755); err != nil {
		return res, err
	}
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()

	start := time.Now()
	if err := os.Rename(filepath.Join(dir, "orders.csv"), filepath.Join(home, "inbox", "welcome", "orders.csv")); err != nil {
		return res, err
	}
	in.FileComplete("bench", "inbox/welcome/orders.csv")
	for {
		fs, err := st.ListFiles(ctx, store.FileFilter{Partner: "bench"})
		if err != nil {
			return res, err
		}
		if len(fs) == 1 && fs[0].Status != store.FileReceived {
			res.Seconds = time.Since(start).Seconds()
			cancel()
			<-done
			if fs[0].Status != store.FileQueued {
				return res, fmt.Errorf("file %s: %s", fs[0].Status, fs[0].Error)
			}
			j, err := st.Job(context.Background(), fs[0].JobID)
			res.Rows, res.Bad = j.Total, fs[0].RowsBad
			return res, err
		}
		// Each look costs a query; every 20ms keeps that under 1% of the
		// CPU the ingest competes for, at ±20ms on a run of seconds.
		time.Sleep(20 * time.Millisecond)
	}
}

// writeBenchCSV writes the national file: PT mobiles as partners in PT
// write them.
func writeBenchCSV(path string, rows int) (int, error) {
	return writeCSV(path, "phone,first_name,order_id,ref,city\n", rows, func(w *bufio.Writer, i int) int {
		fmt.Fprintf(w, "91%07d,%s,ORD-%07d,r%d,Lisboa\n", i%10_000_000, benchNames[i%len(benchNames)], i, i)
		return 0
	})
}

// benchE164 is the e164 file's number format: German mobiles, foreign to
// the PT partner, as in the report that asked for this file (Portuguese
// mobiles in E.164 sent by a partner of another region).
const benchE164 = "+49151%08d"

// writeE164BenchCSV writes the national file with German mobiles in E.164.
func writeE164BenchCSV(path string, rows int) (int, error) {
	return writeCSV(path, "phone,first_name,order_id,ref,city\n", rows, func(w *bufio.Writer, i int) int {
		fmt.Fprintf(w, benchE164+",%s,ORD-%07d,r%d,Lisboa\n", i%100_000_000, benchNames[i%len(benchNames)], i, i)
		return 0
	})
}

// benchPhones are mobile number formats of twelve countries, as partners
// write them: each takes a number below 10^6 (TestBenchPhonesAreValid
// holds them valid for a PT partner).
var benchPhones = []string{
	"91%07d",              // PT, national
	"93%01d %03d %03d",    // PT, national, spaced
	"+35196%07d",          // PT
	"+49 151 2%07d",       // DE
	"0049 1522 %07d",      // DE, with 00
	"+33 6 12%06d",        // FR
	"+39 347 %07d",        // IT
	"+34 6%08d",           // ES
	"+48 512 %06d",        // PL
	"+31 6 12%06d",        // NL
	"+55 11 98%07d",       // BR
	"+61 412 %06d",        // AU
	"+234 803 %07d",       // NG
	"+44 7911 %06d",       // GB
	"+1 (212) 7%02d-%04d", // US
}

// benchPhone is row i's phone number.
func benchPhone(i int) string {
	f := benchPhones[i%len(benchPhones)]
	v := i / len(benchPhones) % 1_000_000
	switch strings.Count(f, "%") {
	case 3:
		return fmt.Sprintf(f, v/1_000_000%10, v/1000%1000, v%1000)
	case 2:
		return fmt.Sprintf(f, v/10000%100, v%10000)
	}
	return fmt.Sprintf(f, v)
}

// writeMixedBenchCSV writes the file of the real shape.
func writeMixedBenchCSV(path string, rows int) (int, error) {
	header := "phone,email,first_name,last_name,order_id,city,product,amount,delivery_date,store,tracking,segment\n"
	cities := []string{"Lisboa", "Porto", "Berlin", "Paris", "Roma", "Madrid", "Warszawa", "Amsterdam", "São Paulo", "Sydney", "Lagos", "London"}
	return writeCSV(path, header, rows, func(w *bufio.Writer, i int) int {
		phone, bad := benchPhone(i), 0
		if i%100_000 == 99_999 {
			phone, bad = "+351 91", 1 // too short
		}
		name := benchNames[i%len(benchNames)]
		fmt.Fprintf(w, "%s,%s.%d@example.com,%s,Silva,ORD-%07d,%s,Widget %d,%d.%02d,2026-12-%02d,Loja %d,TRK%09d,%s\n",
			phone, strings.ToLower(name), i, name, i, cities[i%len(cities)], i%50, i%500, i%100, 1+i%28, i%40, i, []string{"new", "returning", "vip"}[i%3])
		return bad
	})
}

func writeCSV(path, header string, rows int, row func(w *bufio.Writer, i int) int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(header)
	bad := 0
	for i := range rows {
		bad += row(w, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return bad, f.Close()
}

// TestBenchPhonesAreValid checks that the benchmark's phone numbers are
// valid for its PT partner, so that its mixed file has only the bad rows
// it means to have.
func TestBenchPhonesAreValid(t *testing.T) {
	pn := newPhoneNormalizer("PT")
	for i := 0; i < 200_000; i += 997 {
		for _, s := range []string{benchPhone(i), fmt.Sprintf(benchE164, i*7919%100_000_000)} {
			if v, msg := libraryNormalize(pn, s); v == "" {
				t.Errorf("%s", msg)
			}
		}
	}
}

// bareInsert writes the same rows straight into a fresh store's messages
// table, the fastest plain way we know: the writer's pragmas (including
// the checkpoint threshold a file job runs with), transactions of 5000
// rows, 64-row INSERT statements whose shared values (job, channel,
// status, times) are bound once, and values built by
// concatenation (no checks, no templates, no CSV).
func bareInsert(dir string, rows int, withVars bool) (time.Duration, error) {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, "bare.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		return 0, err
	}
	st.Close()
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(ON)", "temp_store(MEMORY)", "cache_size(-8000)",
		"wal_autocheckpoint(65536)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UnixMilli()
	res, err := db.ExecContext(ctx, `INSERT INTO jobs (partner, source, status, priority, created_at) VALUES ('bench', 'file', 'ingesting', 1, ?)`, now)
	if err != nil {
		return 0, err
	}
	jobID, _ := res.LastInsertId()

	const per = 64
	width, varsCol := 4, ""
	if withVars {
		width, varsCol = 5, ", vars"
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	sel := "column1, column2, column3, column4"
	if withVars {
		sel += ", column5"
	}
	insert := func(n int) string {
		// Priority, subject, format, sender and expires_at take their
		// column defaults, as the job writer leaves them.
		return `INSERT INTO messages (job_id, channel, status, next_attempt_at, updated_at,
			line, ref, recipient, body` + varsCol + `) SELECT ?, 'sms', 'queued', ?, ?, ` + sel +
			` FROM (VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + `)`
	}
	start := time.Now()
	const batch = 5000
	args := make([]any, 0, 3+width*per)
	for i := 0; i < rows; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		stmt, err := tx.PrepareContext(ctx, insert(per))
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		for end := min(i+batch, rows); i < end; {
			n := min(per, end-i)
			s := stmt
			if n < per {
				if s, err = tx.PrepareContext(ctx, insert(n)); err != nil {
					tx.Rollback()
					return 0, err
				}
			}
			args = append(args[:0], jobID, now, now)
			for ; n > 0; n, i = n-1, i+1 {
				name, order := benchNames[i%len(benchNames)], "ORD-"+pad7(i)
				args = append(args, i+2, "r"+strconv.Itoa(i), "+35191"+pad7(i%10_000_000),
					"Ola "+name+", a sua encomenda "+order+" foi enviada.")
				if withVars {
					args = append(args, `{"city":"Lisboa","first_name":"`+name+`","order_id":"`+order+`"}`)
				}
			}
			if _, err := s.ExecContext(ctx, args...); err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// pad7 is i in seven digits, zero-padded.
func pad7(i int) string {
	s := strconv.Itoa(i)
	return strings.Repeat("0", max(0, 7-len(s))) + s
}
