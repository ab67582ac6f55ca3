package ftp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
)

// TestPythonFtplibAbortDiscardsTheUpload: ftplib's abort() sends ABOR as
// urgent data. The server must read it as ABOR, answer 426 then 226, and
// keep nothing of the partial upload.
func TestPythonFtplibAbortDiscardsTheUpload(t *testing.T) {
	python := servertest.RequireTool(t, "python3")
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), nil, func(o *ftp.Options) { o.Logger = logs.Logger() })
	host, port, _ := net.SplitHostPort(s.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, filepath.Join("testdata", "ftplib_abort.py"),
		host, port, "acme", acme.Password, "inbox/cut.csv").CombinedOutput()
	if err != nil {
		t.Fatalf("ftplib: %v\n%s\nserver log:\n%s", err, out, logs)
	}
	for _, want := range []string{"abort: 426", "then: 226", "noop: 200"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ftplib output lacks %q:\n%s", want, out)
		}
	}
	inbox := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
	waitFor(t, func() bool { return strings.Contains(logs.String(), "upload aborted") })
	if e, _ := os.ReadDir(inbox); len(e) != 0 {
		t.Errorf("inbox holds %v", e)
	}
	if calls := s.notifier.Calls(); len(calls) != 0 {
		t.Errorf("notified %v", calls)
	}
	if strings.Contains(logs.String(), "Unknown command") {
		t.Errorf("server saw an unknown command:\n%s", logs)
	}
}

// sendUrgent writes p to a TCP connection as urgent (out-of-band) data: the
// urgent pointer marks its last byte.
func sendUrgent(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sendErr error
	if err := raw.Write(func(fd uintptr) bool {
		sendErr = syscall.Sendto(int(fd), p, syscall.MSG_OOB, nil)
		return sendErr != syscall.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
	if sendErr != nil {
		t.Fatal(sendErr)
	}
}

// TestUrgentAbortOnRawControlConnection sends ABOR the ways clients do:
// as ftplib does (the whole line urgent) and as RFC 959 says (Telnet IP,
// then Synch: IAC urgent, DM, then ABOR). Each is an ABOR: 426 for the
// transfer, then 226, and the partial upload is discarded.
func TestUrgentAbortOnRawControlConnection(t *testing.T) {
	for name, send := range map[string]func(t *testing.T, c net.Conn){
		"ftplib": func(t *testing.T, c net.Conn) { sendUrgent(t, c, []byte("ABOR\r\n")) },
		"rfc959": func(t *testing.T, c net.Conn) {
			c.Write([]byte{255, 244}) // IAC IP
			sendUrgent(t, c, []byte{255})
			c.Write([]byte("\xf2ABOR\r\n")) // DM, ABOR
		},
	} {
		t.Run(name, func(t *testing.T) {
			acme := authtest.NewPartner(t, "acme")
			s := start(t, authtest.Config(t, acme), nil, nil)
			raw := dialRaw(t, s)
			raw.login("acme", acme.Password)
			raw.cmd("TYPE I")
			data, err := raw.pasv(nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { data.Close() })
			if code, msg := raw.cmd("STOR inbox/cut.csv"); code != 150 {
				t.Fatalf("STOR: %d %s", code, msg)
			}
			data.Write(bytes.Repeat([]byte("a@example.com\n"), 1000))
			send(t, raw.conn)
			if code, msg := raw.reply(); code != 426 {
				t.Errorf("first reply to ABOR: %d %s; want 426", code, msg)
			}
			if code, msg := raw.reply(); code != 226 {
				t.Errorf("second reply to ABOR: %d %s; want 226", code, msg)
			}
			if code, msg := raw.cmd("NOOP"); code != 200 {
				t.Errorf("NOOP after ABOR: %d %s", code, msg)
			}
			inbox := filepath.Join(s.cfg.PartnerHome("acme"), "inbox")
			waitFor(t, func() bool { e, _ := os.ReadDir(inbox); return len(e) == 0 })
			if calls := s.notifier.Calls(); len(calls) != 0 {
				t.Errorf("notified %v", calls)
			}
		})
	}
}

// TestTelnetSequencesAreStrippedFromCommands: Telnet commands and escapes
// inside a command line do not reach the FTP command parser.
func TestTelnetSequencesAreStrippedFromCommands(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	// IAC NOP, IAC DO option, IAC SB ... IAC SE inside "NOOP".
	raw.conn.Write([]byte("NO\xff\xf1O\xff\xfd\x01P\xff\xfa\x18\x01\xff\xf0\r\n"))
	if code, msg := raw.reply(); code != 200 {
		t.Errorf("NOOP with Telnet commands inside: %d %s", code, msg)
	}
	fmt.Fprintf(raw.conn, "MKD inbox/\xff\xff\r\n") // IAC IAC is one 0xFF byte
	if code, msg := raw.reply(); code != 257 {
		t.Errorf("MKD with an escaped IAC: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "\xff")); err != nil {
		t.Errorf("folder with a 0xFF byte: %v", err)
	}
}
