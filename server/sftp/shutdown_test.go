package sftp_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

func TestStopClosesIdleSessionsWithoutWaitingForTheGrace(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), func(o *sftp.Options) { o.ShutdownGrace, o.Logger = servertest.LongGrace, logs.Logger() })
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	// A connection still in its handshake is idle too.
	half, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { half.Close() })

	if err := s.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := servertest.ClosedAtGraceEnd(t, logs); n != "0" {
		t.Errorf("stop with only idle sessions closed %s at the end of the grace; it should close them at once", n)
	}
	if _, err := c.ReadDir("/"); err == nil {
		t.Error("idle session still open after stop")
	}
}

func TestStopLetsUploadFinishThenClosesItsSession(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), func(o *sftp.Options) { o.ShutdownGrace, o.Logger = servertest.LongGrace, logs.Logger() })
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if err := put(c, "/inbox/first.csv", []byte("email\na@example.com\n")); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("/inbox/late.csv")
	if err != nil {
		t.Fatal(err)
	}
	half := bytes.Repeat([]byte("email\r\nb@example.com\r\n"), 10000)
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()

	// Once the stop has begun, the session may not open another file; that
	// refusal is also how the test knows the stop is under way.
	var refusal error
	servertest.WaitFor(t, "the stop under way", func() bool {
		r, err := c.Open("/inbox/first.csv")
		if err != nil {
			refusal = err
			return true
		}
		r.Close()
		return false
	})
	if !strings.Contains(refusal.Error(), "shutting down") {
		t.Errorf("open after stop refused with %q; want a shutting-down message", refusal)
	}

	if _, err := f.Write(half); err != nil {
		t.Fatalf("upload cut during the grace: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("closing the upload during the grace: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "late.csv"))
	if want := append(slices.Clone(half), half...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file in home: %d bytes, err %v; want %d identical bytes", len(got), err, len(want))
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/first.csv", "acme:inbox/late.csv"}) {
		t.Errorf("notifications = %v", calls)
	}

	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(servertest.HangGuard):
		t.Fatalf("Run still draining %v after the stop with no transfer left (grace %v)", servertest.HangGuard, servertest.LongGrace)
	}
	if n := servertest.ClosedAtGraceEnd(t, logs); n != "0" {
		t.Errorf("stop closed %s sessions at the end of the grace; the upload had ended", n)
	}
	if _, err := c.ReadDir("/"); err == nil {
		t.Error("session still open after its upload ended during the stop")
	}
}
