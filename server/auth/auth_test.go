package auth_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func addr(s string) net.Addr         { a, _ := net.ResolveTCPAddr("tcp", s); return a }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newAuth(t *testing.T, cfg *config.Config, c *clock) (*auth.Authenticator, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	a, err := auth.New(auth.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

func TestPasswordLoginAcceptsRightPasswordOnly(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	a, logs := newAuth(t, authtest.Config(t, acme), newClock())
	name, err := a.CheckPassword("ftp", "acme", acme.Password, addr("192.0.2.1:5000"))
	if err != nil || name != "acme" {
		t.Fatalf("right password: %q, %v", name, err)
	}
	for _, tc := range []struct{ user, pass string }{{"acme", "wrong"}, {"nobody", acme.Password}, {"acme", ""}} {
		if _, err := a.CheckPassword("sftp", tc.user, tc.pass, addr("192.0.2.1:5000")); !errors.Is(err, auth.ErrDenied) {
			t.Errorf("%s/%q: err = %v, want ErrDenied", tc.user, tc.pass, err)
		}
	}
	out := logs.String()
	if strings.Contains(out, acme.Password) {
		t.Error("a password reached the log")
	}
	for _, want := range []string{"partner=nobody", "reason=\"unknown partner\"", "remote=192.0.2.1", "reason=\"wrong password\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestUnknownPartnerCostsAsMuchAsWrongPassword(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	// A real cost, well above noise, but cheaper than the default so the
	// test stays quick under -race.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+4)
	if err != nil {
		t.Fatal(err)
	}
	acme.Partner.PasswordHash = string(hash)
	cfg := authtest.Config(t, acme)
	cfg.Defender.MaxFailures = 0
	a, _ := newAuth(t, cfg, newClock())
	measure := func(user string) time.Duration {
		start := time.Now()
		a.CheckPassword("ftp", user, "nope", addr("192.0.2.1:1"))
		return time.Since(start)
	}
	// Minimums of interleaved runs: scheduling noise only ever adds time.
	known, unknown := time.Hour, time.Hour
	for range 10 {
		known = min(known, measure("acme"))
		unknown = min(unknown, measure("nobody"))
	}
	// Both run one bcrypt comparison at the same cost; a missing comparison
	// would make the unknown name many times faster.
	if unknown < known/3 {
		t.Errorf("unknown partner took %v, wrong password %v: the difference reveals which partners exist", unknown, known)
	}
}

func TestPublicKeyLoginMatchesAuthorizedKeys(t *testing.T) {
	acme, other := authtest.NewPartner(t, "acme"), authtest.NewPartner(t, "other")
	a, _ := newAuth(t, authtest.Config(t, acme, other), newClock())
	if name, err := a.CheckPublicKey("acme", acme.Signer.PublicKey(), addr("192.0.2.1:1")); err != nil || name != "acme" {
		t.Fatalf("own key: %q, %v", name, err)
	}
	if _, err := a.CheckPublicKey("acme", other.Signer.PublicKey(), addr("192.0.2.1:1")); !errors.Is(err, auth.ErrDenied) {
		t.Errorf("another partner's key: %v", err)
	}
}

func TestRepeatedFailuresBanTheAddressUntilBanTime(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	cfg := authtest.Config(t, acme)
	cfg.Defender = config.DefenderConfig{MaxFailures: 3, Window: config.Duration(time.Minute), BanTime: config.Duration(10 * time.Minute)}
	c := newClock()
	a, logs := newAuth(t, cfg, c)
	bad, good := addr("198.51.100.7:4000"), addr("198.51.100.8:4000")
	for range 2 {
		a.CheckPassword("ftp", "acme", "wrong", bad)
	}
	if a.Banned(bad) {
		t.Fatal("banned before max_failures")
	}
	a.CheckPassword("sftp", "acme", "wrong", addr("198.51.100.7:4001")) // other port, other protocol: same client
	if !a.Banned(bad) {
		t.Fatal("not banned after max_failures")
	}
	if _, err := a.CheckPassword("ftp", "acme", acme.Password, bad); !errors.Is(err, auth.ErrBanned) {
		t.Errorf("banned address logged in: %v", err)
	}
	if _, err := a.CheckPassword("ftp", "acme", acme.Password, good); err != nil {
		t.Errorf("another address suffers from the ban: %v", err)
	}
	bans := a.Bans()
	if len(bans) != 1 || bans[0].Addr != "198.51.100.7" || bans[0].Failures != 3 || !bans[0].Until.Equal(c.Now().Add(10*time.Minute)) {
		t.Errorf("Bans() = %+v", bans)
	}
	if !strings.Contains(logs.String(), "address banned") {
		t.Error("ban not logged")
	}
	c.Add(10 * time.Minute)
	if a.Banned(bad) || len(a.Bans()) != 0 {
		t.Error("ban outlived ban_time")
	}
}

func TestFailuresOutsideTheWindowDoNotBan(t *testing.T) {
	cfg := authtest.Config(t, authtest.NewPartner(t, "acme"))
	cfg.Defender = config.DefenderConfig{MaxFailures: 2, Window: config.Duration(time.Minute), BanTime: config.Duration(time.Hour)}
	c := newClock()
	a, _ := newAuth(t, cfg, c)
	a.CheckPassword("ftp", "acme", "wrong", addr("192.0.2.9:1"))
	c.Add(2 * time.Minute)
	a.CheckPassword("ftp", "acme", "wrong", addr("192.0.2.9:1"))
	if a.Banned(addr("192.0.2.9:1")) {
		t.Error("failures two minutes apart banned with a one-minute window")
	}
}

func TestNewNamesTheBadField(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	acme.Partner.AuthorizedKeys = []string{"ssh-ed25519 AAAA-not-base64"}
	if _, err := auth.New(auth.Options{Config: authtest.Config(t, acme)}); err == nil || !strings.Contains(err.Error(), "partner[0].authorized_keys[0]") {
		t.Errorf("err = %v", err)
	}
	acme = authtest.NewPartner(t, "acme")
	acme.Partner.PasswordHash = "plaintext"
	if _, err := auth.New(auth.Options{Config: authtest.Config(t, acme)}); err == nil || !strings.Contains(err.Error(), "partner[0].password_hash") {
		t.Errorf("err = %v", err)
	}
}

func TestHashPasswordMakesAVerifiableBcryptHash(t *testing.T) {
	h, err := auth.HashPassword("s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret pass")); err != nil {
		t.Error(err)
	}
	if _, err := auth.HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
}
