package sftp_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

func TestUploadWithPasswordAppearsAndNotifiesOnce(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if err := c.Mkdir("/inbox/welcome"); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("email,name\r\na@example.com,Ann\r\n"), 20000) // ~640 KB: many concurrent WriteAt
	if err := put(c, "/inbox/welcome/orders.csv", body); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "welcome", "orders.csv"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("file in home: %d bytes, err %v; want %d identical bytes", len(got), err, len(body))
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/welcome/orders.csv"}) {
		t.Errorf("notifications = %v", calls)
	}
	entries, err := os.ReadDir(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "welcome"))
	if err != nil || len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestPublicKeyLoginUploadsAndDownloadsReports(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	report := filepath.Join(s.cfg.PartnerHome("acme"), "reports", "orders.csv.result.csv")
	os.MkdirAll(filepath.Dir(report), 0o750)
	os.WriteFile(report, []byte("line,ref,recipient,status\n2,,a@example.com,sent\n"), 0o640)

	c := connect(t, s, "acme", ssh.PublicKeys(acme.Signer))
	if err := put(c, "inbox/orders.csv", []byte("email\na@example.com\n")); err != nil {
		t.Fatal(err)
	}
	names := listNames(t, c, "/reports")
	if !slices.Equal(names, []string{"orders.csv.result.csv"}) {
		t.Errorf("ls reports/ = %v", names)
	}
	f, err := c.Open("/reports/orders.csv.result.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !strings.Contains(string(got), "a@example.com,sent") {
		t.Errorf("report = %q", got)
	}
}

func listNames(t *testing.T, c *pkgsftp.Client, dir string) []string {
	t.Helper()
	infos, err := c.ReadDir(dir)
	if err != nil {
		t.Fatalf("ls %s: %v", dir, err)
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name())
	}
	return names
}

func TestWrongPasswordAndForeignKeyAreRefused(t *testing.T) {
	acme, other := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "other")
	s := start(t, authtest.Config(t, acme, other), nil)
	if _, err := dialSSH(t, s, clientConfig("acme", ssh.Password("wrong"))); err == nil {
		t.Error("wrong password accepted")
	}
	if _, err := dialSSH(t, s, clientConfig("acme", ssh.PublicKeys(other.Signer))); err == nil {
		t.Error("another partner's key accepted")
	}
	if _, err := dialSSH(t, s, clientConfig("nobody", ssh.Password(acme.Password))); err == nil {
		t.Error("unknown user accepted")
	}
}

func TestBanRefusesAddressBeforeHandshake(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.Defender = config.DefenderConfig{MaxFailures: 3, Window: config.Duration(time.Minute), BanTime: config.Duration(time.Hour)}
	s := start(t, cfg, nil)
	for range 3 {
		dialSSH(t, s, clientConfig("acme", ssh.Password("wrong")))
	}
	if len(s.auth.Bans()) != 1 {
		t.Fatalf("bans = %v", s.auth.Bans())
	}
	_, err := dialSSH(t, s, clientConfig("acme", ssh.Password(acme.Password)))
	if err == nil {
		t.Fatal("banned address logged in")
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("banned address reached authentication: %v", err)
	}
}

func TestPartnerIsConfinedToItsHome(t *testing.T) {
	acme, other := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "other")
	s := start(t, authtest.Config(t, acme, other), nil)
	// Make both homes exist, with a file in the other partner's home and
	// one outside every home.
	connect(t, s, "other", ssh.Password(other.Password))
	otherHome := s.cfg.PartnerHome("other")
	os.WriteFile(filepath.Join(otherHome, "reports", "private.csv"), []byte("secret"), 0o640)
	os.WriteFile(filepath.Join(s.cfg.DataDir, "outside.txt"), []byte("secret"), 0o640)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	// A symlink planted in acme's home (by an admin or a bug), pointing out.
	acmeHome := s.cfg.PartnerHome("acme")
	if err := os.Symlink(s.cfg.DataDir, filepath.Join(acmeHome, "inbox", "link")); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{"../other/reports/private.csv", "/../other/reports/private.csv", "../../outside.txt",
		"inbox/link/outside.txt", "inbox/link/partners/other/reports/private.csv", otherHome + "/reports/private.csv"} {
		if f, err := c.Open(p); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			if string(b) == "secret" {
				t.Errorf("read %s from acme's session", p)
			}
		}
	}
	for _, dir := range []string{"../other", "inbox/link", "inbox/link/partners"} {
		if infos, err := c.ReadDir(dir); err == nil {
			for _, i := range infos {
				if i.Name() == "outside.txt" || i.Name() == "partners" || i.Name() == "private.csv" {
					t.Errorf("listed %s: %v", dir, i.Name())
				}
			}
		}
	}
	put(c, "inbox/link/planted.csv", []byte("x"))
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "planted.csv")); err == nil {
		t.Error("wrote outside the home through a symlink")
	}
	if err := c.Symlink("/etc/passwd", "inbox/passwd"); err == nil {
		t.Error("symlink created")
	}
	if err := c.Link("inbox/x", "inbox/y"); err == nil {
		t.Error("hard link created")
	}
	if got, err := c.RealPath("../../.."); err != nil || got != "/" {
		t.Errorf("realpath ../../.. = %q, %v", got, err)
	}
}

func TestAbortedUploadLeavesNoFileAndNoNotification(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	conn, err := ssh.Dial("tcp", s.Addr().String(), clientConfig("acme", ssh.Password(acme.Password)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("a@example.com\n"), 10000)); err != nil {
		t.Fatal(err)
	}
	conn.Close() // the connection drops mid-transfer: no CLOSE for the handle
	home := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
	servertest.WaitFor(t, "the aborted upload removed", func() bool { e, _ := os.ReadDir(home); return len(e) == 0 })
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Errorf("notified: %v", calls)
	}
}

func TestOversizedUploadIsRefusedAndLeavesNothing(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	acme.Partner.MaxUploadBytes = 1000
	s := start(t, authtest.Config(t, acme), nil)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if err := put(c, "inbox/big.csv", bytes.Repeat([]byte("x"), 5000)); err == nil {
		t.Error("oversized upload succeeded")
	}
	servertest.WaitFor(t, "the refused upload removed", func() bool { e, _ := os.ReadDir(filepath.Join(s.cfg.PartnerHome("acme"), "inbox")); return len(e) == 0 })
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Errorf("notified: %v", calls)
	}
}

func TestReportsAreReadOnlyOverSFTP(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if err := put(c, "reports/fake.result.csv", []byte("x")); !errors.Is(err, os.ErrPermission) {
		t.Errorf("upload into reports/: %v", err)
	}
	if err := c.Mkdir("reports/sub"); err == nil {
		t.Error("mkdir in reports/ succeeded")
	}
	put(c, "inbox/a.csv", []byte("x"))
	if err := c.PosixRename("inbox/a.csv", "reports/a.csv"); err == nil {
		t.Error("rename into reports/ succeeded")
	}
	if err := c.RemoveDirectory("inbox"); err == nil {
		t.Error("top-level folder removed")
	}
	os.WriteFile(filepath.Join(s.cfg.PartnerHome("acme"), "reports", "a.csv.result.csv"), []byte("r"), 0o640)
	if err := c.Remove("reports/a.csv.result.csv"); err != nil {
		t.Errorf("delete own report: %v", err)
	}
}

func TestAppendAndResumeAreRefusedInIngestFolders(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	put(c, "inbox/a.csv", []byte("email\n"))
	if _, err := c.OpenFile("inbox/a.csv", os.O_WRONLY|os.O_APPEND); err == nil {
		t.Error("append accepted")
	}
	if _, err := c.OpenFile("inbox/a.csv", os.O_WRONLY); err == nil {
		t.Error("overwrite in place (resume) accepted")
	}
}

func TestClientTempNameRenamedIntoPlaceIsNotified(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if err := put(c, "inbox/orders.csv.filepart", []byte("email\n")); err != nil {
		t.Fatal(err)
	}
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Fatalf("temp name notified: %v", calls)
	}
	if err := c.PosixRename("inbox/orders.csv.filepart", "inbox/orders.csv"); err != nil {
		t.Fatal(err)
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/orders.csv"}) {
		t.Errorf("notifications = %v", calls)
	}
}

func TestShellExecAndForwardingAreRefused(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	conn, err := dialSSH(t, s, clientConfig("acme", ssh.Password(acme.Password)))
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func(*ssh.Session) error{
		"exec":            func(se *ssh.Session) error { return se.Start("id") },
		"shell":           func(se *ssh.Session) error { return se.Shell() },
		"pty":             func(se *ssh.Session) error { return se.RequestPty("xterm", 24, 80, ssh.TerminalModes{}) },
		"other subsystem": func(se *ssh.Session) error { return se.RequestSubsystem("netconf") },
	} {
		se, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := run(se); err == nil {
			t.Errorf("%s accepted", name)
		}
		se.Close()
	}
	if _, err := conn.Dial("tcp", "127.0.0.1:22"); err == nil {
		t.Error("port forwarding accepted")
	}
	if _, err := conn.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forwarding accepted")
	}
	// The connection is still usable for SFTP afterwards.
	if _, err := pkgsftp.NewClient(conn); err != nil {
		t.Errorf("sftp after refusals: %v", err)
	}
}

func TestWeakAlgorithmsAreRefused(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	for name, alg := range map[string]ssh.Config{
		"sha1 kex":   {KeyExchanges: []string{"diffie-hellman-group14-sha1"}},
		"cbc cipher": {Ciphers: []string{"aes128-cbc"}},
		"3des":       {Ciphers: []string{"3des-cbc"}},
		"rc4":        {Ciphers: []string{"arcfour256"}},
		"sha1 mac":   {Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha1"}},
	} {
		cc := clientConfig("acme", ssh.Password(acme.Password))
		cc.Config = alg
		if _, err := dialSSH(t, s, cc); err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
	}
}

func TestHostKeyIsGeneratedOnceAsOpenSSHFile(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	first := start(t, cfg, nil)
	keyFile := filepath.Join(cfg.DataDir, "ssh_host_ed25519_key")
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v, want 0600", info.Mode().Perm())
	}
	pem, _ := os.ReadFile(keyFile)
	if !strings.HasPrefix(string(pem), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("host key is not in OpenSSH format")
	}
	hostKey := func(s *testServer) ssh.PublicKey {
		var got ssh.PublicKey
		cc := clientConfig("acme", ssh.Password(acme.Password))
		cc.HostKeyCallback = func(_ string, _ net.Addr, k ssh.PublicKey) error { got = k; return nil }
		if _, err := dialSSH(t, s, cc); err != nil {
			t.Fatal(err)
		}
		return got
	}
	k1 := hostKey(first)
	if k1.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s", k1.Type())
	}
	second := start(t, cfg, nil)
	if k2 := hostKey(second); !bytes.Equal(k1.Marshal(), k2.Marshal()) {
		t.Error("host key changed across starts")
	}
}

func TestStopClosesLiveSessionsWithinGrace(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), func(o *sftp.Options) { o.ShutdownGrace, o.Logger = 300*time.Millisecond, logs.Logger() })
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	f, err := c.Create("inbox/cut.csv")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("email\n"))
	if err := s.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := servertest.ClosedAtGraceEnd(t, logs); n != "1" {
		t.Errorf("stop closed %s sessions at the end of the grace; want the one mid-upload", n)
	}
	if _, err := c.ReadDir("/"); err == nil {
		t.Error("session still alive after stop")
	}
	if e, _ := os.ReadDir(filepath.Join(s.cfg.PartnerHome("acme"), "inbox")); len(e) != 0 {
		t.Errorf("upload cut by shutdown left %v", e[0].Name())
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("still accepting after stop")
	}
}

func TestIdleSessionIsClosedButActiveOneIsNot(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.SFTP.IdleTimeout = config.Duration(2 * time.Second)
	s := start(t, cfg, nil)
	idleConn, err := dialSSH(t, s, clientConfig("acme", ssh.Password(acme.Password)))
	if err != nil {
		t.Fatal(err)
	}
	idle, err := pkgsftp.NewClient(idleConn)
	if err != nil {
		t.Fatal(err)
	}
	active := connect(t, s, "acme", ssh.Password(acme.Password))
	if _, err := idle.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	// The active session keeps working, without pauses, until the server
	// has closed the idle one: no wall-clock assertion, only which of the
	// two the server closed.
	closed := make(chan struct{})
	go func() { idleConn.Wait(); close(closed) }()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case <-closed:
			if _, err := active.ReadDir("/"); err != nil {
				t.Errorf("active session closed: %v", err)
			}
			return
		case <-timeout:
			t.Fatal("idle session still open after 30s")
		default:
		}
		if _, err := active.ReadDir("/"); err != nil {
			t.Fatalf("active session closed: %v", err)
		}
	}
}

func TestSilentClientIsDroppedAfterHandshakeTimeout(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), func(o *sftp.Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The server sends its version line, then must hang up on a client
	// that never answers.
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("connection not closed by the server: %v", err)
	}
}

func TestLoginAttemptsAreBoundedPerConnection(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.SFTP.MaxAuthTries = 2
	cfg.Defender.MaxFailures = 0
	s := start(t, cfg, nil)
	tries := 0
	guess := ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
		tries++
		return "wrong", nil
	}), 10)
	if _, err := dialSSH(t, s, clientConfig("acme", guess)); err == nil {
		t.Fatal("logged in with wrong passwords")
	}
	if tries > 2 {
		t.Errorf("server allowed %d password tries on one connection, want at most 2", tries)
	}
}

// forgedSigner offers a real public key but cannot sign with it.
type forgedSigner struct{ pub ssh.PublicKey }

func (f forgedSigner) PublicKey() ssh.PublicKey { return f.pub }
func (f forgedSigner) Sign(io.Reader, []byte) (*ssh.Signature, error) {
	return &ssh.Signature{Format: f.pub.Type(), Blob: bytes.Repeat([]byte{1}, 64)}, nil
}

func TestOfferingAKeyWithoutHoldingItDoesNotLogIn(t *testing.T) {
	acme, other := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "other")
	s := start(t, authtest.Config(t, acme, other), nil)
	// The server's key callback accepts acme's public key when offered;
	// only the signature proves possession, and it is forged here.
	if _, err := dialSSH(t, s, clientConfig("acme", ssh.PublicKeys(forgedSigner{acme.Signer.PublicKey()}))); err == nil {
		t.Fatal("logged in with a key the client does not hold")
	}
	// Offering acme's key first, then proving another key, must not make
	// the session acme's: the identity is the one the server verified.
	conn, err := dialSSH(t, s, clientConfig("other", ssh.PublicKeys(forgedSigner{acme.Signer.PublicKey()}, other.Signer)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := put(c, "inbox/who.csv", []byte("email\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.PartnerHome("other"), "inbox", "who.csv")); err != nil {
		t.Errorf("upload did not land in other's home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "who.csv")); err == nil {
		t.Error("upload landed in acme's home")
	}
}

// TestAlgorithmPolicyIsWhatXCryptoImplements keeps config's policy honest:
// every allowed name is one x/crypto/ssh implements and does not call
// insecure, so a typo cannot silently shrink or weaken the offer.
func TestAlgorithmPolicyIsWhatXCryptoImplements(t *testing.T) {
	supported, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	for _, c := range []struct {
		kind              string
		allowed, impl, no []string
	}{
		{"key exchange", config.AllowedSSHKeyExchanges, supported.KeyExchanges, insecure.KeyExchanges},
		{"cipher", config.AllowedSSHCiphers, supported.Ciphers, insecure.Ciphers},
		{"MAC", config.AllowedSSHMACs, supported.MACs, insecure.MACs},
	} {
		for _, name := range c.allowed {
			if !slices.Contains(c.impl, name) || slices.Contains(c.no, name) {
				t.Errorf("%s %q: not a secure algorithm x/crypto/ssh implements", c.kind, name)
			}
		}
	}
}

// TestDefaultAlgorithmsLetLibssh2ClientsIn: with the default [sftp]
// algorithms, a client that offers only what libssh2 1.10 does (AES-CTR,
// non-etm HMAC-SHA2: curl and PHP on Debian 12) logs in; SHA-1 stays refused.
func TestDefaultAlgorithmsLetLibssh2ClientsIn(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	s := start(t, cfg, nil)
	for _, kex := range []string{"curve25519-sha256", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256"} {
		for _, mac := range []string{"hmac-sha2-256", "hmac-sha2-512"} {
			cc := clientConfig("acme", ssh.Password(acme.Password))
			cc.Config = ssh.Config{KeyExchanges: []string{kex}, Ciphers: []string{"aes128-ctr", "aes256-ctr"}, MACs: []string{mac}}
			conn, err := dialSSH(t, s, cc)
			if err != nil {
				t.Fatalf("libssh2-1.10-like client (%s, %s) refused: %v", kex, mac, err)
			}
			if _, err := pkgsftp.NewClient(conn); err != nil {
				t.Fatalf("sftp: %v", err)
			}
		}
	}
	cc := clientConfig("acme", ssh.Password(acme.Password))
	cc.Config = ssh.Config{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha1"}}
	if _, err := dialSSH(t, s, cc); err == nil {
		t.Error("hmac-sha1 accepted")
	}
}
