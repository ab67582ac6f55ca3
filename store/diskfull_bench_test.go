package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkDiskUse1M writes a 1,000,000-message file job and reports the
// space it takes: the database, the WAL's peak and the database + WAL peak
// while it is written, and the WAL once the job is queued (truncated by
// the job's end) and a minute later. See store/BENCHMARKS.md.
func BenchmarkDiskUse1M(b *testing.B) {
	for _, c := range []struct {
		name string
		free uint64 // 0: unknown (room for the bulk WAL)
	}{{"ample-disk", 0}, {"tight-disk", 100 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				path := filepath.Join(b.TempDir(), "dropgate.db")
				s, err := Open(context.Background(), path)
				if err != nil {
					b.Fatal(err)
				}
				if c.free > 0 {
					s.SetFreeSpace(func() uint64 { return c.free })
				}
				size := func(p string) int64 {
					fi, err := os.Stat(p)
					if err != nil {
						return 0
					}
					return fi.Size()
				}
				var walPeak, sumPeak int64
				var mu sync.Mutex
				stop, done := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(done)
					for {
						select {
						case <-stop:
							return
						default:
						}
						w, d := size(path+"-wal"), size(path)
						mu.Lock()
						walPeak, sumPeak = max(walPeak, w), max(sumPeak, w+d)
						mu.Unlock()
						time.Sleep(2 * time.Millisecond)
					}
				}()
				start := time.Now()
				writeFileJob(b, s, 1_000_000)
				elapsed := time.Since(start)
				walAfter := s.WALSize()
				close(stop)
				<-done
				const mb = 1 << 20
				b.ReportMetric(float64(size(path))/mb, "db-MiB")
				b.ReportMetric(float64(walPeak)/mb, "wal-peak-MiB")
				b.ReportMetric(float64(sumPeak)/mb, "db+wal-peak-MiB")
				b.ReportMetric(float64(walAfter)/mb, "wal-after-MiB")
				b.ReportMetric(elapsed.Seconds(), "write-s")
				s.Close()
			}
		})
	}
}
