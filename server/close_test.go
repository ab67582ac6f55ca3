package server_test

import (
	"context"
	"net"
	"testing"

	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

// door is what the daemon does with a bound server: run it, or close it
// when a later part fails to start.
type door interface {
	Addr() net.Addr
	Run(context.Context) error
	Close() error
}

// A server that was bound but never run (the daemon failed to start a
// later part) releases its port on Close; after Run, Close does nothing.
func TestCloseReleasesTheListenerOfAServerThatNeverRan(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	a, err := auth.New(auth.Options{Config: cfg, Logger: servertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	doors := map[string]func() (door, error){
		"ftp": func() (door, error) {
			return ftp.New(ftp.Options{Config: cfg, Auth: a, Notifier: &authtest.Notifier{}, Logger: servertest.Logger()})
		},
		"sftp": func() (door, error) {
			return sftp.New(sftp.Options{Config: cfg, Auth: a, Notifier: &authtest.Notifier{}, Logger: servertest.Logger()})
		},
	}
	for name, open := range doors {
		t.Run(name, func(t *testing.T) {
			srv, err := open()
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

			ran, err := open()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := ran.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if err := ran.Close(); err != nil {
				t.Errorf("Close after Run: %v", err)
			}
		})
	}
}
