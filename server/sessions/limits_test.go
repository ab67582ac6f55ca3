package sessions_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/server/sessions"
)

func addr(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }

func nop() error { return nil }

// TestAdmitHoldsTotalAndPerAddressLimits: connections past either limit are
// refused with the limit's name; a removed session frees its place.
func TestAdmitHoldsTotalAndPerAddressLimits(t *testing.T) {
	r := sessions.NewLimited(slog.New(slog.DiscardHandler), sessions.Limits{MaxConnections: 3, MaxPerIP: 2})
	a1, err1 := r.Admit(addr("192.0.2.1", 1), nop)
	_, err2 := r.Admit(addr("192.0.2.1", 2), nop)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	var le *sessions.LimitError
	if _, err := r.Admit(addr("192.0.2.1", 3), nop); !errors.As(err, &le) || le.Limit != sessions.LimitPerIP || le.Who != "192.0.2.1" {
		t.Errorf("third from one address: %v", err)
	}
	if _, err := r.Admit(addr("192.0.2.2", 1), nop); err != nil {
		t.Errorf("another address: %v", err)
	}
	if _, err := r.Admit(addr("192.0.2.3", 1), nop); !errors.As(err, &le) || le.Limit != sessions.LimitConnections {
		t.Errorf("past the total: %v", err)
	}
	a1.Remove()
	a1.Remove() // idempotent: frees one place, not two
	if _, err := r.Admit(addr("192.0.2.1", 4), nop); err != nil {
		t.Errorf("after a session left: %v", err)
	}
	if _, err := r.Admit(addr("192.0.2.1", 5), nop); err == nil {
		t.Error("a double Remove freed two places")
	}
}

// TestLoginHoldsThePerPartnerLimit: a partner's sessions past the limit are
// refused at login, other partners are not, and a session that ends frees
// its place.
func TestLoginHoldsThePerPartnerLimit(t *testing.T) {
	r := sessions.NewLimited(slog.New(slog.DiscardHandler), sessions.Limits{MaxPerPartner: 2})
	var acme []*sessions.Session
	for i := range 3 {
		s, err := r.Admit(addr("192.0.2.1", i), nop)
		if err != nil {
			t.Fatal(err)
		}
		acme = append(acme, s)
	}
	if err := acme[0].Login("acme"); err != nil {
		t.Fatal(err)
	}
	if err := acme[1].Login("acme"); err != nil {
		t.Fatal(err)
	}
	var le *sessions.LimitError
	if err := acme[2].Login("acme"); !errors.As(err, &le) || le.Limit != sessions.LimitPerPartner || !strings.Contains(err.Error(), "partner acme") {
		t.Errorf("third acme session: %v", err)
	}
	other, _ := r.Admit(addr("192.0.2.9", 1), nop)
	if err := other.Login("globex"); err != nil {
		t.Errorf("another partner: %v", err)
	}
	acme[0].Remove()
	if err := acme[2].Login("acme"); err != nil {
		t.Errorf("after an acme session ended: %v", err)
	}
	// Logging in again as another partner (FTP allows it) moves the count.
	if err := acme[1].Login("globex"); err != nil {
		t.Fatal(err)
	}
	late, _ := r.Admit(addr("192.0.2.1", 9), nop)
	if err := late.Login("acme"); err != nil {
		t.Errorf("acme after one of its sessions became globex's: %v", err)
	}
	if err := acme[2].Login("globex"); !errors.As(err, &le) {
		t.Errorf("a third globex session: %v", err)
	}
}

// syncBuf collects logs written from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRefusalsAreLoggedAtMostOncePerInterval: a flood of refused
// connections logs one line, and the next line after the interval says how
// many went unlogged.
func TestRefusalsAreLoggedAtMostOncePerInterval(t *testing.T) {
	logs := &syncBuf{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := sessions.NewLimited(slog.New(slog.NewTextHandler(logs, nil)), sessions.Limits{MaxConnections: 1, Now: clock})
	r.Admit(addr("192.0.2.1", 1), nop)
	for i := range 500 {
		if _, err := r.Admit(addr("192.0.2.2", i), nop); err == nil {
			t.Fatal("admitted past the limit")
		}
	}
	if n := strings.Count(logs.String(), "limit reached"); n != 1 {
		t.Fatalf("%d log lines for 500 refusals:\n%s", n, logs)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	r.Admit(addr("192.0.2.2", 999), nop)
	out := logs.String()
	if n := strings.Count(out, "limit reached"); n != 2 || !strings.Contains(out, "refused_unlogged_since_last=499") {
		t.Errorf("after the interval:\n%s", out)
	}
}
