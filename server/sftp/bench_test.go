package sftp_test

// Benchmarks, not part of the normal test run (they need OpenSSH's sftp
// client and sshd, and move a gigabyte):
//
//	go test -run '^$' -bench . -benchtime 1x ./server/sftp
//
// DROPGATE_BENCH_BYTES overrides the upload size (default 1 GiB).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/sftp"
)

// benchServeEnv makes the test binary a bare dropgate SFTP server (see
// TestMain), so benchmarks measure it in its own process, as deployed.
const benchServeEnv = "DROPGATE_SFTP_BENCH_SERVE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(benchServeEnv); dir != "" {
		if err := serveForBench(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveForBench serves partner "bench" (key in $DROPGATE_BENCH_KEY) from
// dataDir, prints "ADDR host:port" and runs until stdin closes.
func serveForBench(dataDir string) error {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.SFTP.Listen = "127.0.0.1:0"
	cfg.Partners = []config.Partner{{Name: "bench", AuthorizedKeys: []string{os.Getenv("DROPGATE_BENCH_KEY")}, MaxUploadBytes: 1 << 40}}
	cfg.Defender.MaxFailures = 0
	// BenchmarkSFTPIdleSessions opens more sessions from one address and
	// partner than the default limits allow.
	cfg.SFTP.MaxConnections, cfg.SFTP.MaxConnectionsPerIP, cfg.SFTP.MaxSessionsPerPartner = 1000, 1000, 1000
	a, err := auth.New(auth.Options{Config: cfg})
	if err != nil {
		return err
	}
	srv, err := sftp.New(sftp.Options{Config: cfg, Auth: a, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	fmt.Printf("ADDR %s\n", srv.Addr())
	return srv.Run(ctx)
}

// benchServer is dropgate's SFTP server in a child process.
type benchServer struct {
	addr    string
	pid     int
	dataDir string
}

func startBenchServer(b *testing.B, creds authtest.Credentials) *benchServer {
	b.Helper()
	dataDir := b.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchServeEnv+"="+dataDir, "DROPGATE_BENCH_KEY="+creds.Partner.AuthorizedKeys[0])
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		b.Fatalf("bench server: %q, %v", line, err)
	}
	return &benchServer{addr: strings.TrimSpace(line[5:]), pid: cmd.Process.Pid, dataDir: dataDir}
}

// benchFile writes n pseudo-random bytes (incompressible, cheap to make).
func benchFile(b *testing.B, n int64) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "upload.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for written := int64(0); written < n; {
		chunk := buf[:min(int64(len(buf)), n-written)]
		r.Read(chunk)
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
		written += int64(len(chunk))
	}
	return path
}

func benchBytes() int64 {
	if s := os.Getenv("DROPGATE_BENCH_BYTES"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return 1 << 30
}

// sftpPut uploads local to remote with OpenSSH's sftp and returns the time.
func sftpPut(b *testing.B, addr, user, keyFile, local, remote string) time.Duration {
	b.Helper()
	host, port, _ := net.SplitHostPort(addr)
	batch := filepath.Join(b.TempDir(), "batch")
	os.WriteFile(batch, []byte(fmt.Sprintf("put %s %s\n", local, remote)), 0o600)
	cmd := exec.Command("sftp", "-b", batch, "-P", port, "-i", keyFile, "-c", "aes128-gcm@openssh.com",
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		user+"@"+host)
	cmd.Env = append(os.Environ(), "HOME="+b.TempDir())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("sftp put: %v\n%s", err, out)
	}
	return time.Since(start)
}

// startSSHD runs OpenSSH's sshd + sftp-server on a loopback port with a
// throwaway config, as the current user, accepting creds' key.
func startSSHD(b *testing.B, creds authtest.Credentials) (addr string) {
	b.Helper()
	sshd := "/usr/sbin/sshd"
	sftpServer := "/usr/lib/openssh/sftp-server"
	for _, p := range []string{sshd, sftpServer} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("OpenSSH server not installed (%s): apt-get install openssh-server", p)
		}
	}
	if os.Geteuid() == 0 {
		// sshd run by root insists on its privilege separation directory.
		os.MkdirAll("/run/sshd", 0o755)
	}
	dir := b.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(creds.Partner.AuthorizedKeys[0]+"\n"), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cfgFile := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfgFile, []byte(strings.Join([]string{
		"ListenAddress 127.0.0.1:" + port,
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"Subsystem sftp " + sftpServer,
		"",
	}, "\n")), 0o600)
	cmd := exec.Command(sshd, "-f", cfgFile, "-D", "-e")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatalf("sshd: %v", err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("sshd did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkSFTPUploadVsOpenSSH uploads the same file with the same client
// and cipher to dropgate and to OpenSSH's sftp-server, best of two rounds
// each, and reports both rates and their ratio (target ≥ 0.9).
func BenchmarkSFTPUploadVsOpenSSH(b *testing.B) {
	if _, err := exec.LookPath("sftp"); err != nil {
		b.Skip("OpenSSH sftp client not installed")
	}
	creds := authtest.NewPartner(b, "bench")
	keyFile := filepath.Join(b.TempDir(), "id_ed25519")
	os.WriteFile(keyFile, creds.PrivateKeyPEM, 0o600)
	n := benchBytes()
	local := benchFile(b, n)
	dg := startBenchServer(b, creds)
	sshdAddr := startSSHD(b, creds)
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	sshdOut := filepath.Join(b.TempDir(), "upload.bin")
	best := func(cur, d time.Duration) time.Duration {
		if cur == 0 || d < cur {
			return d
		}
		return cur
	}
	b.ResetTimer()
	for range b.N {
		var dgBest, osBest time.Duration
		for range 2 {
			dgBest = best(dgBest, sftpPut(b, dg.addr, "bench", keyFile, local, "inbox/upload.bin"))
			osBest = best(osBest, sftpPut(b, sshdAddr, user, keyFile, local, sshdOut))
			os.Remove(sshdOut)
			os.Remove(filepath.Join(dg.dataDir, "partners", "bench", "inbox", "upload.bin"))
		}
		mb := float64(n) / 1e6
		b.ReportMetric(mb/dgBest.Seconds(), "dropgate_MB/s")
		b.ReportMetric(mb/osBest.Seconds(), "openssh_MB/s")
		b.ReportMetric(osBest.Seconds()/dgBest.Seconds(), "ratio")
	}
}

// BenchmarkSFTPIdleSessions opens 100 logged-in SFTP sessions to a dropgate
// server in its own process and reports its resident memory growth.
func BenchmarkSFTPIdleSessions(b *testing.B) {
	const sessions = 100
	creds := authtest.NewPartner(b, "bench")
	for range b.N {
		dg := startBenchServer(b, creds)
		connect := func() *pkgsftp.Client {
			c, err := ssh.Dial("tcp", dg.addr, &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(creds.Signer)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			sc, err := pkgsftp.NewClient(c)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { sc.Close(); c.Close() })
			if _, err := sc.Getwd(); err != nil {
				b.Fatal(err)
			}
			return sc
		}
		connect() // warm up: first session loads code pages and pools
		time.Sleep(200 * time.Millisecond)
		before := rssKB(b, dg.pid)
		for range sessions {
			connect()
		}
		time.Sleep(500 * time.Millisecond)
		after := rssKB(b, dg.pid)
		b.ReportMetric(float64(after-before)/1024, "rss_delta_MB")
		b.ReportMetric(float64(after-before)/sessions, "KB/session")
	}
}

func rssKB(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
