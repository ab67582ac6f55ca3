package ftp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
)

func TestUploadAppearsAndNotifiesOnce(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	c := login(t, s, "acme", acme.Password)
	if err := c.MakeDir("/inbox/welcome"); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("email;name\r\na@example.com;Ann\r\n"), 20000)
	if err := c.Stor("/inbox/welcome/orders.csv", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "welcome", "orders.csv"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("file in home: %d bytes, %v; want %d identical bytes", len(got), err, len(body))
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/welcome/orders.csv"}) {
		t.Errorf("notifications = %v", calls)
	}
}

func TestDownloadReportAfterUpload(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	c := login(t, s, "acme", acme.Password)
	if err := c.Stor("inbox/orders.csv", strings.NewReader("email\na@example.com\n")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.cfg.PartnerHome("acme"), "reports", "orders.csv.result.csv"), []byte("line,status\n2,sent\n"), 0o640)
	names, err := c.NameList("/reports")
	if err != nil || len(names) != 1 || filepath.Base(names[0]) != "orders.csv.result.csv" {
		t.Fatalf("NLST reports = %v, %v", names, err)
	}
	r, err := c.Retr("reports/orders.csv.result.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "line,status\n2,sent\n" {
		t.Errorf("report = %q", got)
	}
}

func TestCRLFFileWithoutTypeIArrivesByteIdentical(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	body := []byte("email;name\r\na@example.com;Ann\r\nb@example.com;Bo\r\n")

	raw := dialRaw(t, s)
	raw.login("acme", acme.Password) // and never TYPE I
	data, err := raw.pasv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := raw.cmd("STOR inbox/crlf.csv"); code != 150 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	data.Write(body)
	data.Close()
	if code, msg := raw.reply(); code != 226 {
		t.Fatalf("after transfer: %d %s", code, msg)
	}
	// A client that asks for ASCII gets binary too.
	c := login(t, s, "acme", acme.Password)
	c.Type(jftp.TransferTypeASCII)
	if err := c.Stor("inbox/ascii.csv", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"crlf.csv", "ascii.csv"} {
		got, _ := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", name))
		if !bytes.Equal(got, body) {
			t.Errorf("%s = %q, want %q", name, got, body)
		}
	}
}

func TestRestAndAppendAreRefusedInIngestFolders(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	c := login(t, s, "acme", acme.Password)
	if err := c.Stor("inbox/a.csv", strings.NewReader("email\na@example.com\n")); err != nil {
		t.Fatal(err)
	}
	err := c.StorFrom("inbox/a.csv", strings.NewReader("b@example.com\n"), 6)
	if err == nil || !strings.Contains(err.Error(), "upload the whole file") {
		t.Errorf("REST 6 + STOR: %v", err)
	}
	err = c.Append("inbox/a.csv", strings.NewReader("c@example.com\n"))
	if err == nil || !strings.Contains(err.Error(), "upload the whole file") {
		t.Errorf("APPE: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "a.csv"))
	if string(got) != "email\na@example.com\n" {
		t.Errorf("file changed: %q", got)
	}
	if calls := s.notifier.Calls(); len(calls) != 1 {
		t.Errorf("notifications = %v", calls)
	}
}

func TestAbortedUploadLeavesNoFileAndNoNotification(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), nil, func(o *ftp.Options) { o.Logger = logs.Logger() })
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	data, err := raw.pasv(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	if code, msg := raw.cmd("STOR inbox/cut.csv"); code != 150 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	data.Write(bytes.Repeat([]byte("a@example.com\n"), 1000))
	// The control connection drops while the data connection is open:
	// the server must treat the transfer as broken.
	raw.conn.Close()
	// The upload's end is logged: after it nothing more can appear.
	servertest.WaitFor(t, "the upload aborted", func() bool { return strings.Contains(logs.String(), "upload aborted") })
	inbox := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
	if e, _ := os.ReadDir(inbox); len(e) != 0 || len(s.notifier.Calls()) != 0 {
		t.Errorf("left %v, notified %v", e, s.notifier.Calls())
	}
}

func TestAbortCommandDiscardsUpload(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	data, err := raw.pasv(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	if code, msg := raw.cmd("STOR inbox/abor.csv"); code != 150 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	data.Write([]byte("email\na@example.com\n"))
	raw.text.PrintfLine("ABOR")
	raw.reply()
	inbox := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
	waitFor(t, func() bool { e, _ := os.ReadDir(inbox); return len(e) == 0 })
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Errorf("notified %v", calls)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	servertest.WaitFor(t, "condition", cond)
}

func TestOversizedUploadIsRefusedAndLeavesNothing(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	acme.Partner.MaxUploadBytes = 1000
	s := start(t, authtest.Config(t, acme), nil, nil)
	c := login(t, s, "acme", acme.Password)
	if err := c.Stor("inbox/big.csv", bytes.NewReader(bytes.Repeat([]byte("x"), 100000))); err == nil {
		t.Error("oversized upload succeeded")
	}
	inbox := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
	waitFor(t, func() bool { e, _ := os.ReadDir(inbox); return len(e) == 0 })
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Errorf("notified: %v", calls)
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	if err := dial(t, s).Login("acme", "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
	if err := dial(t, s).Login("nobody", acme.Password); err == nil {
		t.Error("unknown user accepted")
	}
}

func TestBannedAddressIsRefusedAtConnect(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.Defender = config.DefenderConfig{MaxFailures: 2, Window: config.Duration(time.Minute), BanTime: config.Duration(time.Hour)}
	s := start(t, cfg, nil, nil)
	for range 2 {
		dial(t, s).Login("acme", "wrong")
	}
	raw := dialRaw(t, s)
	if code, msg := raw.reply(); code != 421 {
		t.Errorf("greeting to a banned address: %d %s", code, msg)
	}
}

func TestPartnerIsConfinedToItsHome(t *testing.T) {
	acme, other := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "other")
	s := start(t, authtest.Config(t, acme, other), nil, nil)
	login(t, s, "other", other.Password)
	otherHome := s.cfg.PartnerHome("other")
	os.WriteFile(filepath.Join(otherHome, "reports", "private.csv"), []byte("secret"), 0o640)
	os.WriteFile(filepath.Join(s.cfg.DataDir, "outside.txt"), []byte("secret"), 0o640)
	c := login(t, s, "acme", acme.Password)
	acmeHome := s.cfg.PartnerHome("acme")
	if err := os.Symlink(s.cfg.DataDir, filepath.Join(acmeHome, "inbox", "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../other/reports/private.csv", "/../../outside.txt", "inbox/link/outside.txt",
		"inbox/link/partners/other/reports/private.csv", otherHome + "/reports/private.csv"} {
		if r, err := c.Retr(p); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) == "secret" {
				t.Errorf("read %s from acme's session", p)
			}
		}
	}
	for _, dir := range []string{"../other/reports", "inbox/link", "inbox/link/partners"} {
		if names, err := c.NameList(dir); err == nil {
			for _, n := range names {
				if b := filepath.Base(n); b == "outside.txt" || b == "partners" || b == "private.csv" {
					t.Errorf("listed %s: %v", dir, n)
				}
			}
		}
	}
	c.Stor("inbox/link/planted.csv", strings.NewReader("x"))
	c.Stor("../../planted.csv", strings.NewReader("x"))
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "planted.csv")); err == nil {
		t.Error("wrote outside the home")
	}
}

func TestReportsAreReadOnlyOverFTP(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	c := login(t, s, "acme", acme.Password)
	if err := c.Stor("reports/fake.csv", strings.NewReader("x")); err == nil {
		t.Error("upload into reports/ succeeded")
	}
	if err := c.MakeDir("reports/sub"); err == nil {
		t.Error("mkdir in reports/ succeeded")
	}
	c.Stor("inbox/a.csv", strings.NewReader("x"))
	if err := c.Rename("inbox/a.csv", "reports/a.csv"); err == nil {
		t.Error("rename into reports/ succeeded")
	}
	if err := c.RemoveDir("inbox"); err == nil {
		t.Error("top-level folder removed")
	}
	if err := c.Rename("lists", "inbox/lists"); err == nil {
		t.Error("top-level folder renamed")
	}
	if err := c.MakeDir("lists/customers"); err != nil {
		t.Errorf("mkdir lists/customers: %v", err)
	}
	os.WriteFile(filepath.Join(s.cfg.PartnerHome("acme"), "reports", "a.csv.result.csv"), []byte("r"), 0o640)
	if err := c.Delete("reports/a.csv.result.csv"); err != nil {
		t.Errorf("delete own report: %v", err)
	}
}

func TestClientTempNameRenamedIntoPlaceIsNotified(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	c := login(t, s, "acme", acme.Password)
	if err := c.Stor("inbox/orders.csv.part", strings.NewReader("email\n")); err != nil {
		t.Fatal(err)
	}
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Fatalf("temp name notified: %v", calls)
	}
	if err := c.Rename("inbox/orders.csv.part", "inbox/orders.csv"); err != nil {
		t.Fatal(err)
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/orders.csv"}) {
		t.Errorf("notifications = %v", calls)
	}
}

func TestRequiredTLSRefusesPlainLoginAndAcceptsExplicitTLS(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.FTP.TLS = "required"
	s := start(t, cfg, nil, nil)
	if err := dial(t, s).Login("acme", acme.Password); err == nil {
		t.Fatal("plain USER accepted with tls = required")
	}
	c := login(t, s, "acme", acme.Password, jftp.DialWithExplicitTLS(insecureTLS()))
	body := "email\r\na@example.com\r\n"
	if err := c.Stor("inbox/tls.csv", strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(cfg.PartnerHome("acme"), "inbox", "tls.csv")); string(got) != body {
		t.Errorf("file = %q", got)
	}
	for _, f := range []string{"ftp_tls_cert.pem", "ftp_tls_key.pem"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, f)); err != nil {
			t.Errorf("generated %s: %v", f, err)
		}
	}
	if info, err := os.Stat(filepath.Join(cfg.DataDir, "ftp_tls_key.pem")); err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", info.Mode().Perm())
	}
}

func TestRequiredTLSRefusesPlainUSERAndPlainDataConnection(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.FTP.TLS = "required"
	s := start(t, cfg, nil, nil)
	raw := dialRaw(t, s)
	raw.reply()
	if code, _ := raw.cmd("USER acme"); code < 400 {
		t.Errorf("USER before AUTH TLS: %d", code)
	}
	raw = dialRaw(t, s)
	raw.reply()
	raw.startTLS()
	if code, msg := raw.cmd("USER acme"); code != 331 {
		t.Fatalf("USER over TLS: %d %s", code, msg)
	}
	if code, msg := raw.cmd("PASS %s", acme.Password); code != 230 {
		t.Fatalf("PASS over TLS: %d %s", code, msg)
	}
	// No PBSZ 0 / PROT P: the data connection would be plain.
	data, err := raw.pasv(nil)
	if err == nil {
		t.Cleanup(func() { data.Close() })
	}
	code, msg := raw.cmd("STOR inbox/plain.csv")
	if code == 150 {
		data.Write([]byte("x\n"))
		data.Close()
		code, msg = raw.reply()
	}
	if code == 226 {
		t.Errorf("plain data connection accepted: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(cfg.PartnerHome("acme"), "inbox", "plain.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file stored over a plain data connection: %v", err)
	}
}

func TestImplicitTLSServes(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.FTP.TLS = "implicit"
	s := start(t, cfg, nil, nil)
	c := login(t, s, "acme", acme.Password, jftp.DialWithTLS(insecureTLS()))
	if err := c.Stor("inbox/implicit.csv", strings.NewReader("email\n")); err != nil {
		t.Fatal(err)
	}
}

func TestDataConnectionFromAnotherAddressIsRefused(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	// The control connection comes from 127.0.0.1; the data connection
	// from 127.0.0.2 (Linux routes all of 127/8 to loopback).
	data, err := raw.pasv(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2 here: %v", err)
	}
	t.Cleanup(func() { data.Close() })
	code, msg := raw.cmd("STOR inbox/stolen.csv")
	if code == 150 {
		data.Write([]byte("x\n"))
		data.Close()
		code, msg = raw.reply()
	}
	if code == 226 {
		t.Errorf("data connection from another address accepted: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "stolen.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file stored: %v", err)
	}
}

func TestStopClosesLiveSessionsWithinGrace(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), nil, func(o *ftp.Options) { o.ShutdownGrace, o.Logger = 300*time.Millisecond, logs.Logger() })
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	data, err := raw.pasv(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	raw.cmd("STOR inbox/cut.csv")
	data.Write([]byte("email\n"))
	if err := s.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := servertest.ClosedAtGraceEnd(t, logs); n != "1" {
		t.Errorf("stop closed %s sessions at the end of the grace; want the one mid-upload", n)
	}
	raw.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(raw.conn); err != nil {
		t.Errorf("control connection not closed by the server: %v", err)
	}
	inbox := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
	waitFor(t, func() bool { e, _ := os.ReadDir(inbox); return len(e) == 0 })
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("still accepting after stop")
	}
}

func TestPassivePortRangeAndPublicHostAreAdvertised(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg.FTP.PassivePorts = fmt.Sprintf("%d-%d", port, port)
	cfg.FTP.PublicHost = "localhost" // a name: resolved at each PASV
	s := start(t, cfg, nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	code, msg := raw.cmd("PASV")
	want := fmt.Sprintf("(127,0,0,1,%d,%d)", port/256, port%256)
	if code != 227 || !strings.Contains(msg, want) {
		t.Errorf("PASV = %d %s, want %s", code, msg, want)
	}
}
