package ftp_test

// Benchmark, not part of the normal test run (needs curl, moves a gigabyte):
//
//	go test -run '^$' -bench . -benchtime 1x ./server/ftp
//
// DROPGATE_BENCH_BYTES overrides the upload size (default 1 GiB).

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dropgate/dropgate/server/auth/authtest"
)

// BenchmarkFTPUploadWithCurl uploads a file with curl -T to the FTP server
// (in process; curl is its own process) and reports MB/s.
func BenchmarkFTPUploadWithCurl(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		b.Skip("curl not installed")
	}
	n := int64(1 << 30)
	if s := os.Getenv("DROPGATE_BENCH_BYTES"); s != "" {
		n, _ = strconv.ParseInt(s, 10, 64)
	}
	local := filepath.Join(b.TempDir(), "upload.bin")
	f, err := os.Create(local)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{2})
	buf := make([]byte, 1<<20)
	for written := int64(0); written < n; written += int64(len(buf)) {
		r.Read(buf)
		f.Write(buf[:min(int64(len(buf)), n-written)])
	}
	f.Close()

	creds := authtest.NewPartner(b, "bench")
	creds.Partner.MaxUploadBytes = 1 << 40
	cfg := authtest.Config(b, creds)
	s := start(b, cfg, nil, nil)
	url := "ftp://" + s.Addr().String() + "/inbox/upload.bin"
	b.ResetTimer()
	for range b.N {
		var best time.Duration
		for range 2 {
			begin := time.Now()
			if out, err := exec.Command("curl", "-sS", "--user", "bench:"+creds.Password, "-T", local, url).CombinedOutput(); err != nil {
				b.Fatalf("curl: %v\n%s", err, out)
			}
			if d := time.Since(begin); best == 0 || d < best {
				best = d
			}
			os.Remove(filepath.Join(cfg.PartnerHome("bench"), "inbox", "upload.bin"))
		}
		b.ReportMetric(float64(n)/1e6/best.Seconds(), "MB/s")
	}
}
