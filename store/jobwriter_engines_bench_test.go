package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropgate/dropgate/internal/pgtest"
)

// BenchmarkJobWriterEngines writes a 200,000-row file job through the
// store (BeginFileJob, Add, Commit; 5000 rows a batch, as ingest does) on
// SQLite and, when DROPGATE_TEST_POSTGRES names a database, on
// PostgreSQL, in the same run, and reports rows/s. See store/BENCHMARKS.md:
//
//	go test ./store -run '^$' -bench JobWriterEngines -benchtime 3x
func BenchmarkJobWriterEngines(b *testing.B) {
	const rows = 200_000
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			if engine == "postgres" && pgtest.DSN() == "" {
				b.Skip(pgtest.EnvVar + " is not set")
			}
			var total time.Duration
			for range b.N {
				b.StopTimer()
				var s *Store
				var err error
				if engine == "postgres" {
					s, err = OpenPostgres(context.Background(), pgtest.Schema(b))
				} else {
					s, err = Open(context.Background(), filepath.Join(b.TempDir(), "dropgate.db"))
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				writeFileJob(b, s, rows)
				total += time.Since(start)
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
		})
	}
}
