package main

import (
	"bytes"
	"net"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// These tests drive the whole daemon through its two file servers with the
// Go clients (github.com/pkg/sftp and github.com/jlaffaye/ftp): an upload
// goes all the way to delivered messages, and a stop closes sessions that
// are still open.

// dialSFTP logs in to the daemon's SFTP server as acme with its password.
func dialSFTP(t *testing.T, d *testDaemon) (*ssh.Client, *pkgsftp.Client) {
	t.Helper()
	conn, err := ssh.Dial("tcp", d.Addrs.SFTP.String(), &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SFTP login: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	sc, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	return conn, sc
}

// dialFTP logs in to the daemon's FTP server as acme with its password.
func dialFTP(t *testing.T, d *testDaemon) *jftp.ServerConn {
	t.Helper()
	fc, err := jftp.Dial(d.Addrs.FTP.String(), jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Quit() })
	if err := fc.Login("acme", testPassword); err != nil {
		t.Fatalf("FTP login: %v", err)
	}
	return fc
}

func sftpPut(t testing.TB, sc *pkgsftp.Client, path, content string) {
	t.Helper()
	f, err := sc.Create(path)
	if err != nil {
		t.Fatalf("sftp create %s: %v", path, err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatalf("sftp write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("sftp close %s: %v", path, err)
	}
}

func TestGoClientsUploadOverSFTPAndFTPUntilDelivered(t *testing.T) {
	d := startDaemon(t, testConfig(t, t.TempDir()))
	_, sc := dialSFTP(t, d)
	fc := dialFTP(t, d)

	sftpPut(t, sc, "/templates/shipped.tmpl", shippedTemplate)
	d.waitTemplates(t, 1)
	sftpPut(t, sc, "/inbox/by-sftp.csv", "email,first_name,order_id,ref,template\r\nana@example.com,Ana,A-1,s1,shipped\r\n")
	if err := fc.Stor("/inbox/by-ftp.csv", bytes.NewBufferString("email,first_name,order_id,ref,template\r\nbob@example.com,Bob,B-2,f1,shipped\r\n")); err != nil {
		t.Fatalf("FTP STOR: %v", err)
	}

	waitFor(t, 20*time.Second, "two jobs done", func() bool {
		var resp struct{ Jobs []struct{ Status string } }
		d.API(t, "GET", "/api/v1/jobs", &resp)
		done := 0
		for _, j := range resp.Jobs {
			if j.Status == "done" {
				done++
			}
		}
		return done == 2
	})
	got := map[string]string{}
	for _, m := range d.OutboxLines(t, "email") {
		got[m["ref"].(string)] = m["to"].(string)
	}
	if got["s1"] != "ana@example.com" || got["f1"] != "bob@example.com" || len(got) != 2 {
		t.Errorf("outbox = %v, want s1→ana (SFTP) and f1→bob (FTP)", got)
	}
	// Each partner reads its own result reports back over the same door.
	waitFor(t, 10*time.Second, "result reports", func() bool {
		_, e1 := sc.Stat("/reports/by-sftp.csv.result.csv")
		_, e2 := sc.Stat("/reports/by-ftp.csv.result.csv")
		return e1 == nil && e2 == nil
	})
	r, err := fc.Retr("/reports/by-ftp.csv.result.csv")
	if err != nil {
		t.Fatalf("FTP RETR report: %v", err)
	}
	var report bytes.Buffer
	report.ReadFrom(r)
	r.Close()
	if !bytes.Contains(report.Bytes(), []byte("f1,bob@example.com,sent")) {
		t.Errorf("FTP result report:\n%s", report.String())
	}
}

// TestStopClosesOpenSFTPAndFTPSessions: a partner that stays connected does
// not hold the daemon up; both sessions are closed within the doors' grace
// (5 s, sftp/ftp.DefaultShutdownGrace) and serve returns cleanly.
func TestStopClosesOpenSFTPAndFTPSessions(t *testing.T) {
	d := startDaemon(t, testConfig(t, t.TempDir()))
	conn, sc := dialSFTP(t, d)
	fc := dialFTP(t, d)
	if _, err := sc.ReadDir("/reports"); err != nil {
		t.Fatal(err)
	}
	if err := fc.NoOp(); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve still running 20 s after the stop with two sessions open")
	}
	sshClosed := make(chan error, 1)
	go func() { sshClosed <- conn.Wait() }()
	select {
	case <-sshClosed:
	case <-time.After(5 * time.Second):
		t.Error("SFTP connection still open after serve returned")
	}
	if err := fc.NoOp(); err == nil {
		t.Error("FTP session still answers after serve returned")
	}
	if c, err := net.DialTimeout("tcp", d.Addrs.FTP.String(), time.Second); err == nil {
		c.Close()
		t.Error("FTP listener still accepts after serve returned")
	}
}
