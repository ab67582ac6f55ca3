package ftp_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
)

// greeting connects from local (nil: any address) and returns the first
// reply line and the connection.
func greeting(t *testing.T, s *testServer, local net.Addr) (string, net.Conn) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	return line, c
}

// TestConnectionsPastTheLimitsGet421: past max_connections_per_ip an
// address gets "421 too many connections", others still connect; past
// max_connections everyone does; a connection that ends frees its place;
// the refusals are logged, not once each.
func TestConnectionsPastTheLimitsGet421(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.FTP.MaxConnections, cfg.FTP.MaxConnectionsPerIP = 3, 2
	logs := &servertest.Logs{}
	s := start(t, cfg, nil, func(o *ftp.Options) { o.Logger = logs.Logger() })
	other := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}

	first, c1 := greeting(t, s, nil)
	second, _ := greeting(t, s, nil)
	if !strings.HasPrefix(first, "220") || !strings.HasPrefix(second, "220") {
		t.Fatalf("greetings: %q, %q", first, second)
	}
	for range 3 {
		if line, _ := greeting(t, s, nil); !strings.HasPrefix(line, "421") || !strings.Contains(line, "too many connections from 127.0.0.1") {
			t.Errorf("past the per-address limit: %q", line)
		}
	}
	if line, _ := greeting(t, s, other); !strings.HasPrefix(line, "220") {
		t.Errorf("another address: %q", line)
	}
	if line, _ := greeting(t, s, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}); !strings.HasPrefix(line, "421") || !strings.Contains(line, "too many connections (at most 3)") {
		t.Errorf("past the total: %q", line)
	}
	c1.Close()
	servertest.WaitFor(t, "a place freed by a closed connection", func() bool {
		line, c := greeting(t, s, nil)
		c.Close()
		return strings.HasPrefix(line, "220")
	})
	out := logs.String()
	// Logged, but not once per refusal (the exact rate limit is tested
	// with a clock in package sessions).
	if n := strings.Count(out, "limit=max_connections_per_ip"); n < 1 || n >= 3 {
		t.Errorf("%d logs of the per-address limit for 3 refusals:\n%s", n, out)
	}
	if !strings.Contains(out, "limit=max_connections ") {
		t.Errorf("the total limit was not logged:\n%s", out)
	}
}

// TestConnectionThatDoesNotLogInIsClosedAtTheLoginTimeout: a client that
// connects and never logs in is told and closed at login_timeout, however
// busy it keeps the connection; a logged-in one is not.
func TestConnectionThatDoesNotLogInIsClosedAtTheLoginTimeout(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.FTP.LoginTimeout = config.Duration(time.Second)
	s := start(t, cfg, nil, nil)
	in := login(t, s, "acme", acme.Password)

	raw := dialRaw(t, s)
	raw.reply()
	// Commands before login do not extend the deadline.
	raw.text.PrintfLine("NOOP")
	code, msg := raw.reply()
	if code == 200 { // answered before the deadline, as it almost always is
		code, msg = raw.reply() // blocks until the server speaks
	}
	if code != 421 || !strings.Contains(msg, "Not logged in within 1s") {
		t.Errorf("at the login deadline: %d %s", code, msg)
	}
	if _, err := raw.conn.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after the login deadline")
	}
	// Connected before the other, so its deadline has passed too.
	if err := in.NoOp(); err != nil {
		t.Errorf("logged-in session closed: %v", err)
	}
}

// TestPartnerPastItsSessionLimitIsRefusedAtLogin: one partner cannot hold
// more than max_sessions_per_partner sessions (and so passive ports);
// another partner still logs in.
func TestPartnerPastItsSessionLimitIsRefusedAtLogin(t *testing.T) {
	acme, globex := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "globex")
	cfg := authtest.Config(t, acme, globex)
	cfg.FTP.MaxSessionsPerPartner = 2
	s := start(t, cfg, nil, nil)
	a1 := login(t, s, "acme", acme.Password)
	login(t, s, "acme", acme.Password)
	c := dial(t, s)
	if err := c.Login("acme", acme.Password); err == nil || !strings.Contains(err.Error(), "too many sessions for partner acme") {
		t.Errorf("third acme session: %v", err)
	}
	g := login(t, s, "globex", globex.Password)
	if _, err := g.List("/"); err != nil {
		t.Errorf("globex listing: %v", err)
	}
	a1.Quit()
	servertest.WaitFor(t, "acme's place freed", func() bool {
		c, err := jftp.Dial(s.Addr().String(), jftp.DialWithTimeout(10*time.Second))
		if err != nil {
			return false
		}
		defer c.Quit()
		return c.Login("acme", acme.Password) == nil
	})
}

// TestUnusedPassivePortIsClosedAtPassiveTimeout: a PASV nobody connects to
// stops holding its port at passive_timeout, and the session goes on.
func TestUnusedPassivePortIsClosedAtPassiveTimeout(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.FTP.PassiveTimeout = config.Duration(200 * time.Millisecond)
	s := start(t, cfg, nil, nil)
	raw := dialRaw(t, s)
	raw.login("acme", acme.Password)
	code, msg := raw.cmd("EPSV")
	if code != 229 {
		t.Fatalf("EPSV: %d %s", code, msg)
	}
	port, err := strconv.Atoi(strings.Trim(msg[strings.Index(msg, "(")+1:strings.Index(msg, ")")], "|"))
	if err != nil {
		t.Fatalf("EPSV reply %q: %v", msg, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	servertest.WaitFor(t, "the passive port closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return true
		}
		c.Close() // the kernel took it: the port still listens
		return false
	})
	if code, msg := raw.cmd("NOOP"); code != 200 {
		t.Errorf("session after the passive timeout: %d %s", code, msg)
	}
}

// freePortRange finds n consecutive free TCP ports for a passive range.
func freePortRange(t *testing.T, n int) (int, int) {
	t.Helper()
	for base := 20000 + rand.IntN(30000); ; base += n {
		var held []net.Listener
		ok := true
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if ok {
			return base, base + n - 1
		}
	}
}

// TestOnePartnerCannotTakeEveryPassivePort: sessions of one partner sending
// only PASV cannot take every passive port; another partner still lists.
func TestOnePartnerCannotTakeEveryPassivePort(t *testing.T) {
	acme, globex := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "globex")
	cfg := authtest.Config(t, acme, globex)
	lo, hi := freePortRange(t, 3)
	cfg.FTP.PassivePorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.FTP.MaxSessionsPerPartner = 2
	s := start(t, cfg, nil, nil)
	for i := range 3 {
		raw := dialRaw(t, s)
		raw.reply()
		raw.cmd("USER acme")
		if code, msg := raw.cmd("PASS %s", acme.Password); code != 230 {
			if i < 2 {
				t.Fatalf("acme session %d: %d %s", i, code, msg)
			}
			continue
		}
		if code, msg := raw.cmd("PASV"); code != 227 {
			t.Fatalf("acme PASV %d: %d %s", i, code, msg)
		}
	}
	g := login(t, s, "globex", globex.Password)
	if _, err := g.List("/"); err != nil {
		t.Errorf("globex listing while acme holds passive ports: %v", err)
	}
}
