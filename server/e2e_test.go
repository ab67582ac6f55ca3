package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

// servers are both file servers sharing one Authenticator, as the daemon
// runs them.
type servers struct {
	cfg      *config.Config
	auth     *auth.Authenticator
	sftp     *sftp.Server
	ftp      *ftp.Server
	notifier *authtest.Notifier
}

func startServers(t *testing.T, cfg *config.Config) *servers {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := auth.New(auth.Options{Config: cfg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	n := &authtest.Notifier{}
	ss, err := sftp.New(sftp.Options{Config: cfg, Auth: a, Notifier: n, Logger: logger, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := ftp.New(ftp.Options{Config: cfg, Auth: a, Notifier: n, Logger: logger, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { ss.Run(ctx) })
	wg.Go(func() { fs.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &servers{cfg: cfg, auth: a, sftp: ss, ftp: fs, notifier: n}
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user ssh config or curlrc
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fixture is a partner with a CSV to upload and a report to download.
type fixture struct {
	partner   authtest.Credentials
	dir       string // local scratch folder
	csv       string // local CSV to upload
	csvBody   []byte
	keyFile   string // partner's private key, 0600
	report    string // content placed in reports/orders.csv.result.csv
	knownHost string // known_hosts file for the SFTP server
	hostSHA   string // base64 SHA-256 of the host key, for curl
}

func newFixture(t *testing.T, tweaks ...func(*config.Config)) (*fixture, *servers) {
	t.Helper()
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	s := startServers(t, cfg)
	f := &fixture{partner: acme, dir: t.TempDir(), report: "line,ref,recipient,status\n2,r1,ann@example.com,sent\n"}
	f.csvBody = []byte("email;first_name\r\nann@example.com;Ann\r\n")
	f.csv = filepath.Join(f.dir, "orders.csv")
	must(t, os.WriteFile(f.csv, f.csvBody, 0o600))
	f.keyFile = filepath.Join(f.dir, "id_ed25519")
	must(t, os.WriteFile(f.keyFile, acme.PrivateKeyPEM, 0o600))
	must(t, os.MkdirAll(filepath.Join(cfg.PartnerHome("acme"), "reports"), 0o750))
	must(t, os.WriteFile(filepath.Join(cfg.PartnerHome("acme"), "reports", "orders.csv.result.csv"), []byte(f.report), 0o640))

	pemBytes, err := os.ReadFile(filepath.Join(cfg.DataDir, "ssh_host_ed25519_key"))
	must(t, err)
	signer, err := ssh.ParsePrivateKey(pemBytes)
	must(t, err)
	host := knownHostsLine(s.sftp.Addr(), signer.PublicKey())
	f.knownHost = filepath.Join(f.dir, "known_hosts")
	must(t, os.WriteFile(f.knownHost, []byte(host), 0o600))
	sum := sha256.Sum256(signer.PublicKey().Marshal())
	f.hostSHA = base64.StdEncoding.EncodeToString(sum[:])
	return f, s
}

func knownHostsLine(addr net.Addr, key ssh.PublicKey) string {
	return fmt.Sprintf("[127.0.0.1]:%d %s", addr.(*net.TCPAddr).Port, ssh.MarshalAuthorizedKey(key))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// check asserts the upload landed whole and once, and the report came back.
func (f *fixture) check(t *testing.T, s *servers, uploaded, downloaded string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), filepath.FromSlash(uploaded)))
	if err != nil || !bytes.Equal(got, f.csvBody) {
		t.Errorf("uploaded file = %q, %v; want %q", got, err, f.csvBody)
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:" + uploaded}) {
		t.Errorf("notifications = %v", calls)
	}
	rep, err := os.ReadFile(downloaded)
	if err != nil || string(rep) != f.report {
		t.Errorf("downloaded report = %q, %v", rep, err)
	}
}

func TestOpenSSHSftpClientUploadsWithKeyAndDownloadsReport(t *testing.T) {
	bin := servertest.RequireTool(t, "sftp")
	f, s := newFixture(t)
	got := filepath.Join(f.dir, "got.result.csv")
	batch := filepath.Join(f.dir, "batch")
	must(t, os.WriteFile(batch, fmt.Appendf(nil, "mkdir inbox/welcome\nput %s inbox/welcome/orders.csv\nls reports\nget reports/orders.csv.result.csv %s\n", f.csv, got), 0o600))
	port := fmt.Sprint(s.sftp.Addr().(*net.TCPAddr).Port)
	// -v: the client logs the session's exit status ("Exit status -1" when
	// the server sends none).
	out, err := run(t, bin, "-v", "-b", batch, "-P", port, "-i", f.keyFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+f.knownHost, "-o", "StrictHostKeyChecking=yes",
		"-c", "aes128-gcm@openssh.com", "acme@127.0.0.1")
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "orders.csv.result.csv") {
		t.Errorf("ls reports did not list the report:\n%s", out)
	}
	if !strings.Contains(out, "Exit status 0") {
		t.Errorf("the client saw no exit status 0:\n%s", out)
	}
	f.check(t, s, "inbox/welcome/orders.csv", got)
}

// TestOpenSSHSftpPutPreservingTimesSucceeds: `put -p` sets the file's
// times and mode on the open handle (fsetstat) before closing it; that must
// not fail the transfer, and the times are kept.
func TestOpenSSHSftpPutPreservingTimesSucceeds(t *testing.T) {
	bin := servertest.RequireTool(t, "sftp")
	f, s := newFixture(t)
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	must(t, os.Chtimes(f.csv, mtime, mtime))
	batch := filepath.Join(f.dir, "batch")
	// Without "-" before put, batch mode stops at the first failure.
	must(t, os.WriteFile(batch, fmt.Appendf(nil, "put -p %s inbox/orders.csv\n", f.csv), 0o600))
	port := fmt.Sprint(s.sftp.Addr().(*net.TCPAddr).Port)
	out, err := run(t, bin, "-b", batch, "-P", port, "-i", f.keyFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+f.knownHost, "-o", "StrictHostKeyChecking=yes", "acme@127.0.0.1")
	if err != nil || strings.Contains(out, "Couldn't") {
		t.Fatalf("sftp put -p: %v\n%s", err, out)
	}
	info, err := os.Stat(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime().Equal(mtime) {
		t.Errorf("mtime in place = %v, want %v", info.ModTime(), mtime)
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/orders.csv"}) {
		t.Errorf("notifications = %v", calls)
	}
}

// TestOpenSSHSftpPastThePartnerLimitSaysWhy: a partner already at
// max_sessions_per_partner is told why, not just disconnected.
func TestOpenSSHSftpPastThePartnerLimitSaysWhy(t *testing.T) {
	bin := servertest.RequireTool(t, "sftp")
	f, s := newFixture(t, func(cfg *config.Config) { cfg.SFTP.MaxSessionsPerPartner = 1 })
	held, err := ssh.Dial("tcp", s.sftp.Addr().String(), &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.Password(f.partner.Password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	must(t, err)
	defer held.Close()
	batch := filepath.Join(f.dir, "batch")
	must(t, os.WriteFile(batch, []byte("ls\n"), 0o600))
	port := fmt.Sprint(s.sftp.Addr().(*net.TCPAddr).Port)
	out, err := run(t, bin, "-b", batch, "-P", port, "-i", f.keyFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+f.knownHost, "-o", "StrictHostKeyChecking=yes", "acme@127.0.0.1")
	if err == nil {
		t.Fatalf("sftp past the partner limit succeeded:\n%s", out)
	}
	if !strings.Contains(out, "too many sessions for partner acme") {
		t.Errorf("the client was not told why:\n%s", out)
	}
}

// TestOpenSSHNegotiatesStrictKEX: the defaults keep strict KEX (the
// Terrapin fix), which OpenSSH's client reports at -vvv.
func TestOpenSSHNegotiatesStrictKEX(t *testing.T) {
	bin := servertest.RequireTool(t, "ssh")
	f, s := newFixture(t)
	port := fmt.Sprint(s.sftp.Addr().(*net.TCPAddr).Port)
	// The sftp subsystem with no input: it ends at once, cleanly.
	out, err := run(t, bin, "-vvv", "-n", "-s", "-p", port, "-i", f.keyFile, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+f.knownHost, "-o", "StrictHostKeyChecking=yes", "acme@127.0.0.1", "sftp")
	if err != nil {
		t.Fatalf("ssh -s sftp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "strict KEX") {
		t.Errorf("no strict KEX in the client's log:\n%s", out)
	}
}

func TestOpenSSHClientCannotGetAShell(t *testing.T) {
	bin := servertest.RequireTool(t, "ssh")
	f, s := newFixture(t)
	port := fmt.Sprint(s.sftp.Addr().(*net.TCPAddr).Port)
	out, err := run(t, bin, "-p", port, "-i", f.keyFile, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+f.knownHost, "acme@127.0.0.1", "id")
	if err == nil {
		t.Fatalf("exec over SSH succeeded:\n%s", out)
	}
	if strings.Contains(out, "uid=") {
		t.Errorf("a command ran:\n%s", out)
	}
}

func TestCurlUploadsOverFTPAndDownloadsReport(t *testing.T) {
	bin := servertest.RequireTool(t, "curl")
	f, s := newFixture(t)
	base := "ftp://" + s.ftp.Addr().String()
	user := "acme:" + f.partner.Password
	if out, err := run(t, bin, "-sS", "--user", user, "-T", f.csv, base+"/inbox/orders.csv"); err != nil {
		t.Fatalf("curl -T: %v\n%s", err, out)
	}
	got := filepath.Join(f.dir, "got.result.csv")
	if out, err := run(t, bin, "-sS", "--user", user, "-o", got, base+"/reports/orders.csv.result.csv"); err != nil {
		t.Fatalf("curl download: %v\n%s", err, out)
	}
	out, err := run(t, bin, "-sS", "--user", user, "--list-only", base+"/reports/")
	if err != nil || !strings.Contains(out, "orders.csv.result.csv") {
		t.Errorf("curl list reports/: %v\n%s", err, out)
	}
	f.check(t, s, "inbox/orders.csv", got)
}

func TestCurlUploadsOverExplicitFTPSAndDownloadsReport(t *testing.T) {
	bin := servertest.RequireTool(t, "curl")
	f, s := newFixture(t)
	base := "ftp://" + s.ftp.Addr().String()
	user := "acme:" + f.partner.Password
	// -k: the server's certificate is the self-signed one it generated.
	if out, err := run(t, bin, "-sS", "--ssl-reqd", "-k", "--user", user, "-T", f.csv, base+"/inbox/orders.csv"); err != nil {
		t.Fatalf("curl --ssl-reqd -T: %v\n%s", err, out)
	}
	got := filepath.Join(f.dir, "got.result.csv")
	if out, err := run(t, bin, "-sS", "--ssl-reqd", "-k", "--user", user, "-o", got, base+"/reports/orders.csv.result.csv"); err != nil {
		t.Fatalf("curl --ssl-reqd download: %v\n%s", err, out)
	}
	f.check(t, s, "inbox/orders.csv", got)
}

func TestCurlUploadsOverSFTPAndDownloadsReport(t *testing.T) {
	bin := servertest.RequireTool(t, "curl")
	if out, _ := run(t, bin, "-V"); !strings.Contains(out, "sftp") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl in CI must support sftp:\n%s", out)
		}
		t.Skipf("this curl has no sftp support:\n%s", out)
	}
	// curl on Debian 12 is built on libssh2 1.10, which offers neither
	// AES-GCM nor *-etm MACs: the default [sftp] algorithms must let it in
	// as they are.
	f, s := newFixture(t)
	base := fmt.Sprintf("sftp://127.0.0.1:%d", s.sftp.Addr().(*net.TCPAddr).Port)
	auth := []string{"--user", "acme:", "--key", f.keyFile, "--hostpubsha256", f.hostSHA}
	out, err := run(t, bin, append([]string{"-sS", "-T", f.csv, base + "/inbox/orders.csv"}, auth...)...)
	if err != nil {
		t.Fatalf("curl sftp -T: %v\n%s", err, out)
	}
	got := filepath.Join(f.dir, "got.result.csv")
	if out, err := run(t, bin, append([]string{"-sS", "-o", got, base + "/reports/orders.csv.result.csv"}, auth...)...); err != nil {
		t.Fatalf("curl sftp download: %v\n%s", err, out)
	}
	out, err = run(t, bin, append([]string{"-sS", "--list-only", base + "/reports/"}, auth...)...)
	if err != nil || !strings.Contains(out, "orders.csv.result.csv") {
		t.Errorf("curl sftp list reports/: %v\n%s", err, out)
	}
	f.check(t, s, "inbox/orders.csv", got)
}

func TestFailuresOverBothProtocolsCountTogether(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.Defender = config.DefenderConfig{MaxFailures: 4, Window: config.Duration(time.Minute), BanTime: config.Duration(time.Hour)}
	s := startServers(t, cfg)
	sshFail := func() {
		c, err := ssh.Dial("tcp", s.sftp.Addr().String(), &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.Password("wrong")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err == nil {
			c.Close()
			t.Fatal("wrong password accepted over SSH")
		}
	}
	ftpFail := func() {
		c, err := jftp.Dial(s.ftp.Addr().String(), jftp.DialWithTimeout(10*time.Second))
		must(t, err)
		defer c.Quit()
		if c.Login("acme", "wrong") == nil {
			t.Fatal("wrong password accepted over FTP")
		}
	}
	sshFail()
	ftpFail()
	sshFail()
	if len(s.auth.Bans()) != 0 {
		t.Fatal("banned before max_failures")
	}
	ftpFail()
	if bans := s.auth.Bans(); len(bans) != 1 || bans[0].Addr != "127.0.0.1" || bans[0].Failures != 4 {
		t.Fatalf("bans = %+v", bans)
	}
	// Now both doors are shut, even with the right credentials.
	if c, err := ssh.Dial("tcp", s.sftp.Addr().String(), &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.Password(acme.Password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}); err == nil {
		c.Close()
		t.Error("banned address logged in over SSH")
	}
	if c, err := jftp.Dial(s.ftp.Addr().String(), jftp.DialWithTimeout(10*time.Second)); err == nil {
		if c.Login("acme", acme.Password) == nil {
			t.Error("banned address logged in over FTP")
		}
		c.Quit()
	}
}
