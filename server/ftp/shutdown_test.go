package ftp_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
)

func TestStopClosesIdleSessionsWithoutWaitingForTheGrace(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), nil, func(o *ftp.Options) { o.ShutdownGrace, o.Logger = servertest.LongGrace, logs.Logger() })
	c := login(t, s, "acme", acme.Password)
	if _, err := c.List("/inbox"); err != nil {
		t.Fatal(err)
	}
	// Connected but not logged in is idle too.
	raw := dialRaw(t, s)

	if err := s.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := servertest.ClosedAtGraceEnd(t, logs); n != "0" {
		t.Errorf("stop with only idle sessions closed %s at the end of the grace; it should close them at once", n)
	}
	if err := c.NoOp(); err == nil {
		t.Error("idle session still open after stop")
	}
	raw.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(raw.conn); err != nil {
		t.Errorf("control connection not closed by the server: %v", err)
	}
}

func TestStopLetsUploadFinishThenClosesItsSession(t *testing.T) {
	// Over TLS the server cannot read its own replies on the wire; the
	// session must still close only after the 226.
	t.Run("plain", func(t *testing.T) { testStopLetsUploadFinish(t) })
	t.Run("explicit TLS", func(t *testing.T) { testStopLetsUploadFinish(t, jftp.DialWithExplicitTLS(insecureTLS())) })
}

func testStopLetsUploadFinish(t *testing.T, opts ...jftp.DialOption) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), nil, func(o *ftp.Options) { o.ShutdownGrace, o.Logger = servertest.LongGrace, logs.Logger() })
	c := login(t, s, "acme", acme.Password, opts...)
	idle := login(t, s, "acme", acme.Password, opts...)

	half := bytes.Repeat([]byte("email\r\nb@example.com\r\n"), 10000)
	body, feed := io.Pipe()
	stored := make(chan error, 1)
	go func() { stored <- c.Stor("/inbox/late.csv", body) }()
	// The write returns once the transfer is open and reading.
	if _, err := feed.Write(half); err != nil {
		t.Fatal(err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// The idle session being closed shows the stop is under way.
	waitFor(t, func() bool { return idle.NoOp() != nil })

	if _, err := feed.Write(half); err != nil {
		t.Fatalf("upload cut during the grace: %v", err)
	}
	feed.Close()
	if err := <-stored; err != nil {
		t.Fatalf("upload finished during the grace but the client saw %v", err)
	}
	got, err := os.ReadFile(filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "late.csv"))
	if want := append(slices.Clone(half), half...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file in home: %d bytes, err %v; want %d identical bytes", len(got), err, len(want))
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/late.csv"}) {
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
	if err := c.NoOp(); err == nil {
		t.Error("session still open after its upload ended during the stop")
	}
}
