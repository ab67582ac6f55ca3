package sftp_test

import (
	"encoding/binary"
	"io"
	"net"
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

// dialFrom logs in over SSH from a chosen local address.
func dialFrom(t *testing.T, s *testServer, local net.IP, cc *ssh.ClientConfig) (*ssh.Client, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: local}}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(c, s.Addr().String(), cc)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { client.Close() })
	return client, nil
}

// TestConnectionsPastTheLimitsAreClosed: past max_connections_per_ip an
// address's connections are closed before the handshake, others still log
// in; past max_connections everyone's are; the refusals are logged, not
// once each.
func TestConnectionsPastTheLimitsAreClosed(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.SFTP.MaxConnections, cfg.SFTP.MaxConnectionsPerIP = 3, 2
	logs := &servertest.Logs{}
	s := start(t, cfg, func(o *sftp.Options) { o.Logger = logs.Logger() })
	cc := clientConfig("acme", ssh.Password(acme.Password))
	first, err := dialFrom(t, s, net.IPv4(127, 0, 0, 1), cc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialFrom(t, s, net.IPv4(127, 0, 0, 1), cc); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := dialFrom(t, s, net.IPv4(127, 0, 0, 1), cc); err == nil {
			t.Error("third connection from one address logged in")
		}
	}
	if _, err := dialFrom(t, s, net.IPv4(127, 0, 0, 2), cc); err != nil {
		t.Errorf("another address: %v", err)
	}
	if _, err := dialFrom(t, s, net.IPv4(127, 0, 0, 3), cc); err == nil {
		t.Error("connection past the total logged in")
	}
	first.Close()
	servertest.WaitFor(t, "a place freed by a closed connection", func() bool {
		c, err := dialFrom(t, s, net.IPv4(127, 0, 0, 1), cc)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	out := logs.String()
	// Logged, but not once per refusal (the exact rate limit is tested
	// with a clock in package sessions).
	if n := strings.Count(out, "limit=max_connections_per_ip"); n < 1 || n >= 3 {
		t.Errorf("%d logs of the per-address limit for 3 refusals:\n%s", n, out)
	}
}

// TestPartnerPastItsSessionLimitIsDisconnected: a partner's connection past
// max_sessions_per_partner ends after login; another partner is served.
func TestPartnerPastItsSessionLimitIsDisconnected(t *testing.T) {
	acme, globex := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "globex")
	cfg := authtest.Config(t, acme, globex)
	cfg.SFTP.MaxSessionsPerPartner = 1
	s := start(t, cfg, nil)
	first := connect(t, s, "acme", ssh.Password(acme.Password))
	conn, err := dialSSH(t, s, clientConfig("acme", ssh.Password(acme.Password)))
	if err != nil {
		t.Fatal(err)
	}
	// The client is told why, on stderr, with exit status 1.
	ch, reqs, err := conn.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	statuses := make(chan uint32, 1)
	go func() {
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) == 4 {
				statuses <- binary.BigEndian.Uint32(r.Payload)
			}
		}
		close(statuses)
	}()
	if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"sftp"})); err != nil || !ok {
		t.Fatalf("subsystem request: %v %v", ok, err)
	}
	stderr, _ := io.ReadAll(ch.Stderr())
	if !strings.Contains(string(stderr), "too many sessions for partner acme (at most 1)") {
		t.Errorf("stderr = %q", stderr)
	}
	if status, ok := <-statuses; !ok || status != 1 {
		t.Errorf("exit status %d (sent: %v), want 1", status, ok)
	}
	if _, err := pkgsftp.NewClient(conn); err == nil {
		t.Error("second acme session served")
	}
	g := connect(t, s, "globex", ssh.Password(globex.Password))
	if _, err := g.ReadDir("/"); err != nil {
		t.Errorf("globex: %v", err)
	}
	if _, err := first.ReadDir("/"); err != nil {
		t.Errorf("first acme session: %v", err)
	}
}

// TestLoginTimeoutComesFromTheConfig: [sftp] login_timeout bounds the
// handshake and login.
func TestLoginTimeoutComesFromTheConfig(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.SFTP.LoginTimeout = config.Duration(300 * time.Millisecond)
	s := start(t, cfg, nil)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("connection not closed by the server: %v", err)
	}
}
