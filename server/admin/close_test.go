package admin

import (
	"net"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store/storetest"
)

// A server that was bound but never run releases its port on Close.
func TestCloseReleasesTheListenerOfAServerThatNeverRan(t *testing.T) {
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	s, err := New(Options{Config: cfg, Store: storetest.Open(t), Workflows: &fakeWorkflows{}, CheckEvents: fakeCheckEvents})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port is still held after Close: %v", err)
	}
	ln.Close()
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
