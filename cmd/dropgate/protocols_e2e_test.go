package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth/authtest"
)

// These tests drive the whole daemon with the real clients partners use:
// OpenSSH's sftp with a key, and curl over FTP, FTPS and SFTP. Each uploads
// a template and a CSV, waits for the job to end, and downloads the result
// report from reports/ with the same client.

const protocolsCSV = "email,first_name,order_id,ref,template\r\nana@example.com,Ana,A-1,r1,shipped\r\n"

// clientFixture is a started daemon plus local files for a client.
type clientFixture struct {
	d         *testDaemon
	dir       string
	tmpl, csv string // local files to upload
	keyFile   string // acme's private key (OpenSSH format, 0600)
	knownHost string // known_hosts naming the daemon's SFTP host key
	hostSHA   string // base64 SHA-256 of the host key, for curl
}

func newClientFixture(t *testing.T, tweaks ...func(*config.Config)) *clientFixture {
	t.Helper()
	creds := authtest.NewPartner(t, "acme")
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].AuthorizedKeys = creds.Partner.AuthorizedKeys
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	d := startDaemon(t, cfg)
	f := &clientFixture{d: d, dir: t.TempDir()}
	f.tmpl = filepath.Join(f.dir, "shipped.tmpl")
	f.csv = filepath.Join(f.dir, "orders.csv")
	f.keyFile = filepath.Join(f.dir, "id_ed25519")
	writeFile(t, f.tmpl, shippedTemplate)
	writeFile(t, f.csv, protocolsCSV)
	if err := os.WriteFile(f.keyFile, creds.PrivateKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(cfg.DataDir, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	f.knownHost = filepath.Join(f.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", d.Addrs.SFTP.(*net.TCPAddr).Port, ssh.MarshalAuthorizedKey(signer.PublicKey()))
	writeFile(t, f.knownHost, line)
	sum := sha256.Sum256(signer.PublicKey().Marshal())
	f.hostSHA = base64.StdEncoding.EncodeToString(sum[:])
	return f
}

// waitTemplate waits until the uploaded template is stored, so the CSV
// that names it is not rejected for an unknown template.
func (f *clientFixture) waitTemplate(t *testing.T) {
	t.Helper()
	f.d.waitTemplates(t, 1)
}

// waitReport waits for the job's result report to appear in reports/.
func (f *clientFixture) waitReport(t *testing.T) {
	t.Helper()
	report := filepath.Join(f.d.Home("acme"), "reports", "orders.csv.result.csv")
	waitFor(t, 20*time.Second, "result report", func() bool { _, err := os.Stat(report); return err == nil })
}

// checkReport checks the downloaded report says the row was sent.
func checkReport(t *testing.T, path string) {
	t.Helper()
	rows := readCSV(t, path)
	if len(rows) != 2 || rows[1][1] != "r1" || rows[1][2] != "ana@example.com" || rows[1][3] != "sent" {
		t.Errorf("downloaded result report = %v", rows)
	}
}

// requireClient returns a client binary's path. A missing one skips the
// test, except in CI (CI=true), where it must be installed.
func requireClient(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// runTool runs a client with a scratch HOME (no user config) and returns
// its combined output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestOpenSSHSftpDropsFileAndFetchesResultReport(t *testing.T) {
	bin := requireClient(t, "sftp")
	f := newClientFixture(t)
	sftp := func(batch string) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "batch")
		writeFile(t, file, batch)
		out, err := runTool(t, bin, "-b", file, "-P", fmt.Sprint(f.d.Addrs.SFTP.(*net.TCPAddr).Port), "-i", f.keyFile,
			"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
			"-o", "UserKnownHostsFile="+f.knownHost, "-o", "StrictHostKeyChecking=yes", "acme@127.0.0.1")
		if err != nil {
			t.Fatalf("sftp: %v\n%s", err, out)
		}
		return out
	}
	sftp(fmt.Sprintf("put %s templates/shipped.tmpl\n", f.tmpl))
	f.waitTemplate(t)
	sftp(fmt.Sprintf("put %s inbox/orders.csv\n", f.csv))
	f.waitReport(t)
	got := filepath.Join(f.dir, "got.result.csv")
	out := sftp(fmt.Sprintf("ls reports\nget reports/orders.csv.result.csv %s\n", got))
	if !strings.Contains(out, "orders.csv.result.csv") {
		t.Errorf("ls reports:\n%s", out)
	}
	checkReport(t, got)
}

func TestCurlFTPDropsFileAndFetchesResultReport(t *testing.T) {
	testCurlFTP(t)
}

func TestCurlFTPSDropsFileAndFetchesResultReport(t *testing.T) {
	// -k: the daemon's certificate is the self-signed one it generated.
	testCurlFTP(t, "--ssl-reqd", "-k")
}

func testCurlFTP(t *testing.T, tlsArgs ...string) {
	bin := requireClient(t, "curl")
	f := newClientFixture(t)
	base := "ftp://" + f.d.Addrs.FTP.String()
	curl := func(args ...string) {
		t.Helper()
		args = append(append([]string{"-sS", "--user", "acme:" + testPassword}, tlsArgs...), args...)
		if out, err := runTool(t, bin, args...); err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
	}
	curl("-T", f.tmpl, base+"/templates/shipped.tmpl")
	f.waitTemplate(t)
	curl("-T", f.csv, base+"/inbox/orders.csv")
	f.waitReport(t)
	got := filepath.Join(f.dir, "got.result.csv")
	curl("-o", got, base+"/reports/orders.csv.result.csv")
	checkReport(t, got)
}

func TestCurlSFTPDropsFileAndFetchesResultReport(t *testing.T) {
	bin := requireClient(t, "curl")
	if out, _ := runTool(t, bin, "-V"); !strings.Contains(out, "sftp") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl in CI must support sftp:\n%s", out)
		}
		t.Skipf("this curl has no sftp support:\n%s", out)
	}
	// curl on Debian 12 is built on libssh2 1.10, which offers neither
	// AES-GCM nor *-etm MACs: the default [sftp] algorithms let it in.
	f := newClientFixture(t)
	base := fmt.Sprintf("sftp://127.0.0.1:%d", f.d.Addrs.SFTP.(*net.TCPAddr).Port)
	curl := func(args ...string) (string, error) {
		t.Helper()
		return runTool(t, bin, append([]string{"-sS", "--user", "acme:", "--key", f.keyFile, "--hostpubsha256", f.hostSHA}, args...)...)
	}
	out, err := curl("-T", f.tmpl, base+"/templates/shipped.tmpl")
	if err != nil {
		t.Fatalf("curl sftp upload: %v\n%s", err, out)
	}
	f.waitTemplate(t)
	if out, err := curl("-T", f.csv, base+"/inbox/orders.csv"); err != nil {
		t.Fatalf("curl sftp upload: %v\n%s", err, out)
	}
	f.waitReport(t)
	got := filepath.Join(f.dir, "got.result.csv")
	if out, err := curl("-o", got, base+"/reports/orders.csv.result.csv"); err != nil {
		t.Fatalf("curl sftp download: %v\n%s", err, out)
	}
	checkReport(t, got)
}

// TestEmbeddedDefaultDemoLogsInOverSFTPAndFTP starts "dropgate serve" with
// no config: the generated demo password logs in to both file servers.
func TestEmbeddedDefaultDemoLogsInOverSFTPAndFTP(t *testing.T) {
	data := filepath.Join(t.TempDir(), "dropgate-data")
	e := startEmbeddedDefault(t, data)
	defer func() {
		if err := e.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	errb := e.log
	sftpAddr := regexp.MustCompile(`sftp=(\S+)`).FindStringSubmatch(errb.String())
	ftpAddr := regexp.MustCompile(`\bftp=(\S+)`).FindStringSubmatch(errb.String())
	if sftpAddr == nil || ftpAddr == nil {
		t.Fatalf("no server addresses in the log:\n%s", errb.String())
	}
	pw, err := os.ReadFile(filepath.Join(data, "secrets", demoPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))

	conn, err := ssh.Dial("tcp", sftpAddr[1], &ssh.ClientConfig{User: "demo", Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("demo SFTP login: %v", err)
	}
	defer conn.Close()
	sc, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.ReadDir("/reports"); err != nil {
		t.Errorf("demo ls reports/ over SFTP: %v", err)
	}

	fc, err := jftp.Dial(ftpAddr[1], jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Quit()
	if err := fc.Login("demo", password); err != nil {
		t.Fatalf("demo FTP login: %v", err)
	}
	if _, err := fc.List("/reports"); err != nil {
		t.Errorf("demo ls reports/ over FTP: %v", err)
	}
}
