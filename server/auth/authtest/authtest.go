// Package authtest builds partners with fresh credentials and a config for
// tests that start dropgate's file servers.
package authtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
)

// Credentials are one test partner's secrets and config record.
type Credentials struct {
	// Partner is the config record, with a bcrypt hash and one authorized key.
	Partner config.Partner
	// Password is the clear password.
	Password string
	// Signer holds the private half of the authorized key.
	Signer ssh.Signer
	// PrivateKeyPEM is the private key in OpenSSH PEM format, for the
	// OpenSSH and curl clients.
	PrivateKeyPEM []byte
}

// NewPartner makes a partner with a random password (hashed at bcrypt's
// minimum cost, to keep tests fast) and a fresh ed25519 key.
func NewPartner(t testing.TB, name string) Credentials {
	t.Helper()
	var b [12]byte
	rand.Read(b[:])
	password := hex.EncodeToString(b[:])
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name+"@test")
	if err != nil {
		t.Fatal(err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + name + "@test"
	return Credentials{
		Partner: config.Partner{
			Name:           name,
			PasswordHash:   string(hash),
			AuthorizedKeys: []string{authorized},
			Channels:       []string{"email"},
		},
		Password:      password,
		Signer:        signer,
		PrivateKeyPEM: pem.EncodeToMemory(block),
	}
}

// Config returns the default config with a temporary data dir, both file
// servers on 127.0.0.1:0, no passive port range (tests run in parallel),
// and the given partners.
func Config(t testing.TB, partners ...Credentials) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SFTP.Listen = "127.0.0.1:0"
	cfg.FTP.Listen = "127.0.0.1:0"
	cfg.FTP.PassivePorts = ""
	cfg.Admin.Listen = "127.0.0.1:0"
	for _, p := range partners {
		cfg.Partners = append(cfg.Partners, p.Partner)
	}
	return cfg
}

// Notifier records FileComplete calls. It is safe for concurrent use.
type Notifier struct {
	mu    sync.Mutex
	calls []string
}

// FileComplete records "partner:relPath".
func (n *Notifier) FileComplete(partner, relPath string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, partner+":"+relPath)
}

// Calls returns the recorded calls in order.
func (n *Notifier) Calls() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}
