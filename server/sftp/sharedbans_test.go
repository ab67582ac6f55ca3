package sftp_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/sftp"
	"github.com/dropgate/dropgate/store"
)

// sharedStores opens two handles on one database, as two nodes would:
// SQLite, then PostgreSQL when a test database is configured (always on CI).
func sharedStores(t *testing.T, f func(t *testing.T, a, b *store.Store)) {
	open := func(t *testing.T, pg bool, path string) *store.Store {
		var st *store.Store
		var err error
		if pg {
			st, err = store.OpenPostgres(context.Background(), pgtest.SchemaFor(t, path))
		} else {
			st, err = store.Open(context.Background(), path)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			if pg && pgtest.Missing() != "" {
				t.Fatal(pgtest.Missing())
			}
			if pg && pgtest.DSN() == "" {
				t.Skip("no PostgreSQL test database: set " + pgtest.EnvVar)
			}
			path := filepath.Join(t.TempDir(), "dropgate.db")
			f(t, open(t, pg, path), open(t, pg, path))
		})
	}
}

// A ban made by node A's defender refuses the address at node B's SFTP
// server too, before the handshake: the bans live in the shared database.
func TestBanOnOneNodeRefusesLoginAtAnother(t *testing.T) {
	sharedStores(t, func(t *testing.T, stA, stB *store.Store) {
		acme := authtest.NewPartner(t, "acme")
		cfg := authtest.Config(t, acme)
		cfg.Defender = config.DefenderConfig{MaxFailures: 3, Window: config.Duration(time.Minute), BanTime: config.Duration(time.Hour)}
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		}
		a := start(t, cfg, func(o *sftp.Options) { o.Auth = sharedAuth(t, cfg, stA, "A", clock) })
		b := start(t, cfg, func(o *sftp.Options) { o.Auth = sharedAuth(t, cfg, stB, "B", clock) })
		connect(t, b, "acme", ssh.Password(acme.Password)) // B lets the address in before the ban
		for range 3 {
			dialSSH(t, a, clientConfig("acme", ssh.Password("wrong")))
		}
		// B looked the address up at its login: it trusts that look for a
		// short while (a cache), and asks the shared table again after it.
		mu.Lock()
		now = now.Add(3 * time.Second)
		mu.Unlock()
		_, err := dialSSH(t, b, clientConfig("acme", ssh.Password(acme.Password)))
		if err == nil {
			t.Fatal("address banned at node A logged in at node B")
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("banned address reached authentication at node B: %v", err)
		}
		bans, err := stB.Bans(context.Background(), clock())
		if err != nil || len(bans) != 1 || bans[0].Node != "A" {
			t.Fatalf("shared bans = %+v, %v; want the one node A made", bans, err)
		}
	})
}

// sharedAuth is an Authenticator whose defender keeps its bans in st.
func sharedAuth(t *testing.T, cfg *config.Config, st *store.Store, node string, now func() time.Time) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Options{Config: cfg, Shared: st, Node: node, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
