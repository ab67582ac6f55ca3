package ingest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// The list send benchmark (issue 10, performance). Run it alone:
//
//	DROPGATE_BENCH_RUNS=3 go test ./ingest -run '^$' -bench BenchmarkListSend1M -benchtime=1x
//
// In one process and one store: 1,000,000 contacts of one list (made with
// plain SQL, see insertBenchContacts), each with six attributes, half of
// them with orders > 2. Each run then times, in an order that alternates
// between runs:
//
//   - anchor: the ingest of a 500,000-row recipient file (the national
//     file of BenchmarkIngest1M) in inbox/welcome/, template benchTemplate,
//     from the call to process until the job is queued;
//   - send: a list send of the same template to the list with the
//     segment benchSegment (500,000 matched): every member read, decoded,
//     evaluated, and the matched rendered and written through the job
//     writer until the job is queued;
//   - dry run: the same send with dry_run.
//
// and logs each, with send/anchor (target ≤ 1.5) and the dry run (target
// ≤ 2 s). The reported metrics are medians over the runs.
// DROPGATE_BENCH_CONTACTS changes the number of contacts (the file has
// half as many rows).

const benchSegment = `orders > 2 && last_order_at > now() - duration("8760h")`

func BenchmarkListSend1M(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-contact benchmark skipped in -short mode")
	}
	contacts := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_CONTACTS")); err == nil && v > 0 {
		contacts = v
	}
	runs := 1
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Partners = []config.Partner{{Name: "bench", Region: "PT", Timezone: "Europe/Lisbon", OnBadRows: config.SkipRows, Channels: []string{"sms"}}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	in, err := New(Options{Config: cfg, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer in.watcher.Close()
	p := in.partners["bench"]
	if _, _, err := in.PutTemplate(ctx, "bench", "welcome", benchTemplate); err != nil {
		b.Fatal(err)
	}
	list, err := st.EnsureList(ctx, "bench", "customers")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := insertBenchContacts(ctx, cfg.DBPath(), "bench", list.ID, contacts); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d contacts inserted in %.1fs", contacts, time.Since(start).Seconds())
	csvPath := filepath.Join(b.TempDir(), "anchor.csv")
	if _, err := writeBenchCSV(csvPath, contacts/2); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	matching := 0 // contacts with orders (i % 6) > 2
	for i := range contacts {
		if i%6 > 2 {
			matching++
		}
	}
	req := ListSendRequest{List: "customers", Template: "welcome", Segment: benchSegment}
	var anchors, sends, dries, ratios []float64
	b.ResetTimer()
	for i := range b.N * runs {
		steps := []string{"anchor", "send", "dry"}
		if v := os.Getenv("DROPGATE_BENCH_STEPS"); v != "" { // e.g. "send" to profile one step
			steps = strings.Split(v, ",")
		}
		if i%2 == 1 {
			slices.Reverse(steps)
		}
		got, cpu := map[string]float64{}, map[string]float64{}
		for _, step := range steps {
			c0 := processCPU()
			switch step {
			case "anchor":
				rel := fmt.Sprintf("inbox/welcome/anchor-%d.csv", i)
				// A line of its own per run: the same content twice is a duplicate.
				content := append(slices.Clone(data), []byte(fmt.Sprintf("912999%03d,Run,ORD-R%d,run%d,Lisboa\n", i, i, i))...)
				abs := filepath.Join(p.home, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(abs, content, 0o640); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				in.process(ctx, workItem{partner: "bench", rel: rel})
				got[step], cpu[step] = time.Since(t0).Seconds(), processCPU()-c0
				f, err := st.LastFileNamed(ctx, "bench", rel)
				if err != nil || f.Status != store.FileQueued || f.RowsTotal != contacts/2+1 {
					b.Fatalf("anchor file: %+v, %v", f, err)
				}
			case "send", "dry":
				r := req
				r.DryRun = step == "dry"
				t0 := time.Now()
				res, problems, err := in.SendToList(ctx, "bench", r)
				got[step], cpu[step] = time.Since(t0).Seconds(), processCPU()-c0
				if err != nil || len(problems) > 0 {
					b.Fatalf("%s: %v %v", step, err, problems)
				}
				if res.Considered != contacts || res.Matched != matching || res.SkippedByError != 0 || (!r.DryRun && res.Queued != matching) {
					b.Fatalf("%s: %+v", step, res)
				}
			}
		}
		for step, v := range got {
			switch step {
			case "anchor":
				anchors = append(anchors, v)
			case "send":
				sends = append(sends, v)
			case "dry":
				dries = append(dries, v)
			}
		}
		if got["anchor"] > 0 {
			ratios = append(ratios, got["send"]/got["anchor"])
		}
		b.Logf("run %d (load %s): anchor (%d-row file) %.2fs (CPU %.2fs); send (%d contacts, %d matched) %.2fs (CPU %.2fs); send/anchor %.2f (CPU %.2f); dry run %.2fs (CPU %.2fs)",
			i+1, loadAvg(), contacts/2, got["anchor"], cpu["anchor"], contacts, matching, got["send"], cpu["send"],
			got["send"]/got["anchor"], cpu["send"]/cpu["anchor"], got["dry"], cpu["dry"])
	}
	for _, m := range []struct {
		v    []float64
		unit string
	}{{anchors, "anchor-s"}, {sends, "send-s"}, {ratios, "send/anchor"}, {dries, "dry-s"}} {
		if len(m.v) > 0 {
			b.ReportMetric(median(m.v), m.unit)
		}
	}
}

// processCPU is the user and system time this process has used, in
// seconds: on a shared machine it moves much less than the wall time.
func processCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// insertBenchContacts makes n contacts of a partner, all subscribed
// members of the list, with plain multi-row inserts: contact i has phone
// +35191xxxxxxx, ref c<i>, and orders i%6 (so half have orders > 2).
func insertBenchContacts(ctx context.Context, dbPath, partner string, listID int64, n int) error {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(OFF)", "foreign_keys(OFF)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UnixMilli()
	recent := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, f := range [][2]string{{"city", "string"}, {"first_name", "string"}, {"last_order_at", "time"}, {"order_id", "string"}, {"orders", "integer"}, {"vip", "boolean"}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO contact_fields (partner, name, type) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, partner, f[0], f[1]); err != nil {
			return err
		}
	}
	// Generated inside SQLite (a recursive series), in transactions of
	// 100,000: a row built in Go was most of the setup's time.
	names := "CASE i % 8"
	for k, name := range benchNames {
		names += fmt.Sprintf(" WHEN %d THEN '%s'", k, name)
	}
	names += " END"
	const perTx = 100_000
	for lo := 0; lo < n; lo += perTx {
		hi := min(lo+perTx, n)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?)
			INSERT INTO contacts (id, partner, phone, ref, attributes, created_at, updated_at)
			SELECT i + 1, ?, printf('+35191%07d', i % 10000000), 'c' || i,
				json_object('city', 'Lisboa', 'first_name', `+names+`, 'last_order_at', ?, 'order_id', printf('ORD-%07d', i),
					'orders', i % 6, 'vip', json(CASE WHEN i % 2 = 0 THEN 'true' ELSE 'false' END)), ?, ?
			FROM s`, lo, hi, partner, recent, now, now); err != nil {
			tx.Rollback()
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO list_members (list_id, contact_id, status, updated_at)
			SELECT ?, id, 'subscribed', ? FROM contacts WHERE id > ? AND id <= ?`, listID, now, lo, hi); err != nil {
			tx.Rollback()
			return err
		}
		// As the store's own writers do (migration 0048).
		if _, err := tx.ExecContext(ctx, `INSERT INTO contact_partners (partner) VALUES (?) ON CONFLICT (partner) DO NOTHING`, partner); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	_, err = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
