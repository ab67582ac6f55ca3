package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dropgate/dropgate/internal/pgtest"
)

// BenchmarkListLoadEngines loads a list of 1,000,000 contacts
// (DROPGATE_BENCH_ROWS to change) into a fresh store of each engine (a
// first import), then the same contacts again with one attribute changed
// on every row (every contact updated), through the store alone (no file
// parsing). PostgreSQL runs when DROPGATE_TEST_POSTGRES is set:
//
//	DROPGATE_TEST_POSTGRES=... go test ./store -run '^$' -bench BenchmarkListLoadEngines -benchtime=1x
func BenchmarkListLoadEngines(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			for range b.N {
				var s *Store
				var err error
				if engine == "sqlite" {
					s, err = Open(context.Background(), filepath.Join(b.TempDir(), "dropgate.db"))
				} else {
					if pgtest.DSN() == "" {
						b.Skip(pgtest.EnvVar + " is not set")
					}
					s, err = OpenPostgres(context.Background(), pgtest.Schema(b))
				}
				if err != nil {
					b.Fatal(err)
				}
				insert := benchListLoad(b, s, rows, 0)
				update := benchListLoad(b, s, rows, 1)
				s.Close()
				b.ReportMetric(float64(rows)/insert.Seconds(), "insert-rows/s")
				b.ReportMetric(float64(rows)/update.Seconds(), "update-rows/s")
				b.Logf("%s: %d rows inserted in %v, updated in %v", engine, rows, insert.Round(time.Millisecond), update.Round(time.Millisecond))
			}
		})
	}
}

func benchListLoad(b *testing.B, s *Store, rows, gen int) time.Duration {
	b.Helper()
	start := time.Now()
	l, err := s.BeginListLoad(context.Background(), "acme", "news",
		ListLoadOptions{Fields: map[string]string{"city": FieldString, "n": FieldInteger}, Rows: rows}, true)
	if err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		r := ContactRow{Line: i + 2, Email: fmt.Sprintf("user%d@example.com", i), Phone: fmt.Sprintf("+3519%08d", i),
			Attrs: fmt.Appendf(nil, `{"city":"Lisbon","n":%d}`, i+gen)}
		if err := l.Add(r); err != nil {
			b.Fatal(err)
		}
	}
	counts, err := l.Commit(0, rows)
	if err != nil {
		b.Fatal(err)
	}
	if counts.Inserted+counts.Updated != rows {
		b.Fatalf("counts %+v", counts)
	}
	return time.Since(start)
}
