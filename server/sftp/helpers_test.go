package sftp_test

import (
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

// testServer is a running SFTP server with its config and notifier.
type testServer struct {
	*sftp.Server
	cfg      *config.Config
	notifier *authtest.Notifier
	auth     *auth.Authenticator
	stop     func() error // cancels Run and returns its error
}

func start(t *testing.T, cfg *config.Config, tweak func(*sftp.Options)) *testServer {
	t.Helper()
	a, err := auth.New(auth.Options{Config: cfg, Logger: servertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	n := &authtest.Notifier{}
	opts := sftp.Options{Config: cfg, Auth: a, Notifier: n, Logger: servertest.Logger(), ShutdownGrace: time.Second}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := sftp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := servertest.Run(t, srv.Run)
	return &testServer{Server: srv, cfg: cfg, notifier: n, auth: a, stop: stop}
}

func clientConfig(user string, auths ...ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            user,
		Auth:            auths,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	}
}

func dialSSH(t *testing.T, s *testServer, cc *ssh.ClientConfig) (*ssh.Client, error) {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr().String(), cc)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// connect logs in and opens an SFTP client.
func connect(t *testing.T, s *testServer, user string, auths ...ssh.AuthMethod) *pkgsftp.Client {
	t.Helper()
	c, err := dialSSH(t, s, clientConfig(user, auths...))
	if err != nil {
		t.Fatalf("ssh login as %s: %v", user, err)
	}
	sc, err := pkgsftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

func put(c *pkgsftp.Client, name string, body []byte) error {
	f, err := c.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
