package ftp_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/server/auth/authtest"
)

// TestPrivilegedActivePortsAreRefused: PORT and EPRT to a port below 1024
// of the client's own address get a 5xx reply and no connection attempt.
func TestPrivilegedActivePortsAreRefused(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	for _, cmd := range []string{"PORT 127,0,0,1,0,25", "PORT 127,0,0,1,3,255", "EPRT |1|127.0.0.1|25|", "EPRT |1|127.0.0.1|1023|"} {
		code, msg := raw.cmd("%s", cmd)
		if code < 500 || !strings.Contains(msg, "privileged") {
			t.Errorf("%s: %d %s; want a 5xx saying the port is privileged", cmd, code, msg)
		}
	}
	// After a refused PORT there is no data connection to use.
	if code, msg := raw.cmd("LIST"); code < 400 {
		t.Errorf("LIST after a refused PORT: %d %s", code, msg)
	}
}

// TestActiveUploadToAnUnprivilegedPortWorks: active mode itself still works.
func TestActiveUploadToAnUnprivilegedPortWorks(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if code, msg := raw.cmd("EPRT |1|127.0.0.1|%d|", port); code != 200 {
		t.Fatalf("EPRT to port %d: %d %s", port, code, msg)
	}
	body := "email\na@example.com\n"
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = fmt.Fprint(c, body)
			c.Close()
		}
		done <- err
	}()
	if code, msg := raw.cmd("STOR inbox/active.csv"); code != 150 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, msg := raw.reply(); code != 226 {
		t.Fatalf("after transfer: %d %s", code, msg)
	}
	if got, _ := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "active.csv")); string(got) != body {
		t.Errorf("file = %q", got)
	}
}
