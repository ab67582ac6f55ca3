package ftp_test

import (
	"crypto/tls"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
)

// testServer is a running FTP server with its config and notifier.
type testServer struct {
	*ftp.Server
	cfg      *config.Config
	notifier *authtest.Notifier
	auth     *auth.Authenticator
	stop     func() error
}

func start(t testing.TB, cfg *config.Config, a *auth.Authenticator, tweak func(*ftp.Options)) *testServer {
	t.Helper()
	if a == nil {
		var err error
		if a, err = auth.New(auth.Options{Config: cfg, Logger: servertest.Logger()}); err != nil {
			t.Fatal(err)
		}
	}
	n := &authtest.Notifier{}
	opts := ftp.Options{Config: cfg, Auth: a, Notifier: n, Logger: servertest.Logger(), ShutdownGrace: time.Second}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := ftp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := servertest.Run(t, srv.Run)
	return &testServer{Server: srv, cfg: cfg, notifier: n, auth: a, stop: stop}
}

// dial connects a jlaffaye/ftp client without logging in.
func dial(t *testing.T, s *testServer, opts ...jftp.DialOption) *jftp.ServerConn {
	t.Helper()
	c, err := jftp.Dial(s.Addr().String(), append([]jftp.DialOption{jftp.DialWithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

func login(t *testing.T, s *testServer, user, pass string, opts ...jftp.DialOption) *jftp.ServerConn {
	t.Helper()
	c := dial(t, s, opts...)
	if err := c.Login(user, pass); err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	return c
}

// rawClient speaks FTP by hand, for what jlaffaye/ftp does not let a test
// do: skip TYPE I, cut a transfer, open data connections from elsewhere.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

func dialRaw(t *testing.T, s *testServer) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { conn.Close() })
	r := &rawClient{t: t, conn: conn, text: textproto.NewConn(conn)}
	return r
}

// reply reads one reply.
func (r *rawClient) reply() (int, string) {
	r.t.Helper()
	code, msg, err := r.text.ReadResponse(0)
	if err != nil && code == 0 {
		r.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

// cmd sends a command and reads its reply.
func (r *rawClient) cmd(format string, args ...any) (int, string) {
	r.t.Helper()
	if err := r.text.PrintfLine(format, args...); err != nil {
		r.t.Fatalf("send: %v", err)
	}
	return r.reply()
}

// startTLS upgrades the control connection (AUTH TLS).
func (r *rawClient) startTLS() {
	r.t.Helper()
	if code, msg := r.cmd("AUTH TLS"); code != 234 {
		r.t.Fatalf("AUTH TLS: %d %s", code, msg)
	}
	r.conn = tls.Client(r.conn, insecureTLS())
	r.text = textproto.NewConn(r.conn)
}

func (r *rawClient) login(user, pass string) {
	r.t.Helper()
	r.reply() // greeting
	r.cmd("USER %s", user)
	if code, msg := r.cmd("PASS %s", pass); code != 230 {
		r.t.Fatalf("PASS: %d %s", code, msg)
	}
}

// pasv asks for a passive port and connects to it from local (nil: any).
func (r *rawClient) pasv(local net.Addr) (net.Conn, error) {
	r.t.Helper()
	code, msg := r.cmd("PASV")
	if code != 227 {
		r.t.Fatalf("PASV: %d %s", code, msg)
	}
	inner := msg[strings.Index(msg, "(")+1 : strings.Index(msg, ")")]
	f := strings.Split(inner, ",")
	p1, _ := strconv.Atoi(f[4])
	p2, _ := strconv.Atoi(f[5])
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	return d.Dial("tcp", net.JoinHostPort(strings.Join(f[:4], "."), strconv.Itoa(p1*256+p2)))
}

// insecureTLS trusts the self-signed certificate the server generated.
func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
}
