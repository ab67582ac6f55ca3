package ftp_test

// FTP upload against a plain io.Copy receiver, with the server's CPU:
//
//	go test -run '^$' -bench FTPUploadVsIOCopy -benchtime 1x ./server/ftp
//
// DROPGATE_BENCH_BYTES sets the upload size (default 512 MiB) and
// DROPGATE_BENCH_RUNS the interleaved runs (default 5); medians are
// reported. DROPGATE_BENCH_SFTPGO, the path of an SFTPGo binary, adds
// SFTPGo's FTP server to every round (see startSFTPGo and
// bench/sftpgo_compare.sh). The anchor is the least any receiver can do: accept a TCP
// connection and io.Copy it into a file. Both clients are processes of
// their own (curl -T for FTP, bash's /dev/tcp for the anchor), so the
// CPU of this process (getrusage) is the server's alone.
//
// An inotify watcher on inbox/, as the ingest watcher keeps in the
// daemon, counts the events an upload causes: an upload written in the
// watched folder wakes it on every write.

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/dropgate/dropgate/server/auth/authtest"
)

func BenchmarkFTPUploadVsIOCopy(b *testing.B) {
	for _, tool := range []string{"curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skip(tool + " not installed")
		}
	}
	n := envInt(b, "DROPGATE_BENCH_BYTES", 512<<20)
	runs := int(envInt(b, "DROPGATE_BENCH_RUNS", 5))
	local := randomFile(b, n)

	creds := authtest.NewPartner(b, "bench")
	creds.Partner.MaxUploadBytes = 1 << 40
	cfg := authtest.Config(b, creds)
	s := start(b, cfg, nil, nil)
	inbox := filepath.Join(cfg.PartnerHome("bench"), "inbox")
	url := "ftp://" + s.Addr().String() + "/inbox/upload.bin"

	if err := os.MkdirAll(inbox, 0o750); err != nil { // made by the first login otherwise
		b.Fatal(err)
	}
	var events atomic.Int64
	w, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(inbox); err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			select {
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				events.Add(1)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()

	anchorDir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	received := make(chan error, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f, err := os.Create(filepath.Join(anchorDir, "upload.bin"))
			if err == nil {
				_, err = io.Copy(f, conn)
				f.Close()
			}
			conn.Close()
			received <- err
		}
	}()
	anchorCmd := fmt.Sprintf("cat %s > /dev/tcp/127.0.0.1/%d", local, ln.Addr().(*net.TCPAddr).Port)

	// SFTPGo's FTP server, when DROPGATE_BENCH_SFTPGO names its binary
	// (sftpgo_test.go): the same curl command, in the same rounds.
	sg := startSFTPGo(b)

	var ftpMBs, ftpCPU, ftpEvents, copyMBs, copyCPU, ftpClient, copyClient, sgMBs, sgCPU []float64
	b.ResetTimer()
	for range b.N {
		for range runs {
			if sg != nil {
				cpu0, t0 := sg.cpuSeconds(b), time.Now()
				if out, err := exec.Command("curl", "-sS", "--user", sg.user+":"+sg.password, "-T", local, sg.url("upload.bin")).CombinedOutput(); err != nil {
					b.Fatalf("curl to SFTPGo: %v\n%s", err, out)
				}
				sgMBs = append(sgMBs, float64(n)/1e6/time.Since(t0).Seconds())
				sgCPU = append(sgCPU, sg.cpuSeconds(b)-cpu0)
				os.Remove(filepath.Join(sg.home, "upload.bin"))
			}

			cpu0, client0, t0 := cpuSeconds(), childCPUSeconds(), time.Now()
			if out, err := exec.Command("bash", "-c", anchorCmd).CombinedOutput(); err != nil {
				b.Fatalf("anchor client: %v\n%s", err, out)
			}
			if err := <-received; err != nil {
				b.Fatal(err)
			}
			copyMBs = append(copyMBs, float64(n)/1e6/time.Since(t0).Seconds())
			copyCPU = append(copyCPU, cpuSeconds()-cpu0)
			copyClient = append(copyClient, childCPUSeconds()-client0)
			os.Remove(filepath.Join(anchorDir, "upload.bin"))

			ev0 := events.Load()
			cpu0, client0, t0 = cpuSeconds(), childCPUSeconds(), time.Now()
			if out, err := exec.Command("curl", "-sS", "--user", "bench:"+creds.Password, "-T", local, url).CombinedOutput(); err != nil {
				b.Fatalf("curl: %v\n%s", err, out)
			}
			ftpMBs = append(ftpMBs, float64(n)/1e6/time.Since(t0).Seconds())
			ftpCPU = append(ftpCPU, cpuSeconds()-cpu0)
			ftpClient = append(ftpClient, childCPUSeconds()-client0)
			ftpEvents = append(ftpEvents, float64(events.Load()-ev0))
			os.Remove(filepath.Join(inbox, "upload.bin"))
		}
	}
	b.StopTimer()
	perHalfGiB := float64(512<<20) / float64(n)
	b.ReportMetric(median(ftpMBs), "ftp-MB/s")
	b.ReportMetric(median(ftpCPU)*perHalfGiB, "ftp-cpu-s/512MiB")
	b.ReportMetric(median(ftpEvents), "ftp-inotify-events")
	b.ReportMetric(median(copyMBs), "iocopy-MB/s")
	b.ReportMetric(median(copyCPU)*perHalfGiB, "iocopy-cpu-s/512MiB")
	b.ReportMetric(median(ftpMBs)/median(copyMBs), "ftp/iocopy")
	b.ReportMetric(median(ftpClient)*perHalfGiB, "curl-cpu-s/512MiB")
	b.ReportMetric(median(copyClient)*perHalfGiB, "cat-cpu-s/512MiB")
	b.Logf("ftp MB/s %.0f, cpu s %.2f, events %.0f, curl cpu s %.2f; io.Copy MB/s %.0f, cpu s %.2f, cat cpu s %.2f",
		ftpMBs, ftpCPU, ftpEvents, ftpClient, copyMBs, copyCPU, copyClient)
	if sg != nil {
		b.ReportMetric(median(sgMBs), "sftpgo-MB/s")
		b.ReportMetric(median(sgCPU)*perHalfGiB, "sftpgo-cpu-s/512MiB")
		b.ReportMetric(median(ftpMBs)/median(sgMBs), "ftp/sftpgo")
		ratios := make([]float64, len(ftpMBs))
		for i := range ftpMBs {
			ratios[i] = ftpMBs[i] / sgMBs[i]
		}
		b.ReportMetric(median(ratios), "ftp/sftpgo-per-round")
		b.Logf("sftpgo MB/s %.0f, cpu s %.2f; dropgate/sftpgo per round %.2f", sgMBs, sgCPU, ratios)
	}
}

// cpuSeconds is this process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// childCPUSeconds is the user and system CPU time of the waited-for
// children so far: the clients.
func childCPUSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func envInt(b *testing.B, name string, def int64) int64 {
	if s := os.Getenv(name); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return v
	}
	return def
}

// randomFile writes n random bytes to a file in a temporary folder.
func randomFile(b *testing.B, n int64) string {
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
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return local
}
