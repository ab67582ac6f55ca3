package sftp_test

import (
	"net"
	"testing"

	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

// A server that was bound but never run (the daemon failed to start a
// later part) releases its port on Close; after Run, Close does nothing.
func TestCloseReleasesTheListenerOfAServerThatNeverRan(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	a, err := auth.New(auth.Options{Config: cfg, Logger: servertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sftp.New(sftp.Options{Config: cfg, Auth: a, Notifier: &authtest.Notifier{}, Logger: servertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port is still held after Close: %v", err)
	}
	ln.Close()

	ran := start(t, authtest.Config(t, acme), nil)
	if err := ran.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := ran.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
}
