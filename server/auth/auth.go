// Package auth checks partner credentials for the SFTP and FTP servers and
// bans addresses that fail too often (the defender). One Authenticator is
// shared by both servers, so failures over either protocol count together.
package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
)

// ErrDenied is returned for every failed login, whatever the reason, so a
// client cannot tell unknown partners from wrong passwords.
var ErrDenied = errors.New("authentication failed")

// ErrBanned is returned when the remote address is banned.
var ErrBanned = errors.New("too many failed logins from this address; try again later")

// Options configure an Authenticator.
type Options struct {
	// Config supplies the partners and the defender settings.
	Config *config.Config
	// Logger receives failures and bans; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// OnLoginFailed, when set, is told of each failed password login and
	// whether it got the address banned (for metrics).
	OnLoginFailed func(protocol string, banned bool)
	// Shared, when set, keeps the bans and failure counts in the database
	// shared by every node (PostgreSQL); nil keeps them in this process.
	Shared SharedBans
	// Node names this node in the bans it shares.
	Node string
}

// Authenticator checks passwords and SSH keys against the configured
// partners and keeps the defender's failure counts. It is safe for
// concurrent use.
type Authenticator struct {
	partners map[string]*credentials
	// dummyHash is compared against for unknown partners and partners
	// without a password, so those cost the same time as a wrong password.
	dummyHash []byte
	defender  *defender
	logger    *slog.Logger
	onFailed  func(protocol string, banned bool)
}

// credentials are one partner's parsed secrets.
type credentials struct {
	name         string
	passwordHash []byte
	keys         [][]byte // ssh wire format of each authorized key
}

// New parses every partner's password hash and authorized keys. Errors name
// the field at fault.
func New(opts Options) (*Authenticator, error) {
	if opts.Config == nil {
		return nil, errors.New("auth: no config")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "auth")
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{
		partners: make(map[string]*credentials, len(opts.Config.Partners)),
		logger:   logger,
		defender: newDefender(opts.Config.Defender, now, logger),
		onFailed: opts.OnLoginFailed,
	}
	a.defender.shared, a.defender.node = opts.Shared, opts.Node
	dummyCost := 0
	for i, p := range opts.Config.Partners {
		c := &credentials{name: p.Name}
		if p.PasswordHash != "" {
			cost, err := bcrypt.Cost([]byte(p.PasswordHash))
			if err != nil {
				return nil, fmt.Errorf("partner[%d].password_hash: not a bcrypt hash (make one with `dropgate hash-password`): %w", i, err)
			}
			dummyCost = max(dummyCost, cost)
			c.passwordHash = []byte(p.PasswordHash)
		}
		for j, line := range p.AuthorizedKeys {
			key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("partner[%d].authorized_keys[%d]: not an authorized_keys line: %w", i, j, err)
			}
			c.keys = append(c.keys, key.Marshal())
		}
		a.partners[p.Name] = c
	}
	if dummyCost == 0 {
		dummyCost = bcrypt.DefaultCost
	}
	// The dummy costs what the dearest real hash costs, so an unknown name
	// takes no less time than a known one.
	dummy, err := bcrypt.GenerateFromPassword([]byte("dropgate-dummy-password"), dummyCost)
	if err != nil {
		return nil, fmt.Errorf("cannot prepare password checks: %w", err)
	}
	a.dummyHash = dummy
	return a, nil
}

// HashPassword returns the bcrypt hash of pw to put in a partner's
// password_hash.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("password must not be empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("cannot hash password: %w", err)
	}
	return string(h), nil
}

// Banned reports whether logins from the address are refused.
func (a *Authenticator) Banned(remote net.Addr) bool {
	return a.defender.banned(hostOf(remote))
}

// CheckPassword returns the partner's name when pass is its password. Every
// failure is logged (never the password) and counted by the defender.
func (a *Authenticator) CheckPassword(protocol, user, pass string, remote net.Addr) (string, error) {
	host := hostOf(remote)
	if a.defender.banned(host) {
		return "", ErrBanned
	}
	c, ok := a.partners[user]
	hash := a.dummyHash
	if ok && c.passwordHash != nil {
		hash = c.passwordHash
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	if err == nil && ok && c.passwordHash != nil {
		a.logger.Info("login", "protocol", protocol, "partner", user, "method", "password", "remote", host)
		return c.name, nil
	}
	reason := "wrong password"
	switch {
	case !ok:
		reason = "unknown partner"
	case c.passwordHash == nil:
		reason = "partner has no password"
	}
	a.logger.Warn("login failed", "protocol", protocol, "partner", user, "method", "password", "remote", host, "reason", reason)
	banned := a.defender.fail(host)
	if a.onFailed != nil {
		a.onFailed(protocol, banned)
	}
	return "", ErrDenied
}

// CheckPublicKey returns the partner's name when key is one of its
// authorized keys. It does not prove the client holds the private key: the
// SSH server only trusts the name once the signature is verified, which is
// why the name travels in ssh.Permissions.
//
// Rejected keys are logged but not counted by the defender: SSH clients
// offer every key they hold in turn, so a partner with several keys would
// otherwise ban itself.
func (a *Authenticator) CheckPublicKey(user string, key ssh.PublicKey, remote net.Addr) (string, error) {
	host := hostOf(remote)
	if a.defender.banned(host) {
		return "", ErrBanned
	}
	if c, ok := a.partners[user]; ok {
		wire := key.Marshal()
		for _, k := range c.keys {
			if subtle.ConstantTimeCompare(k, wire) == 1 {
				return c.name, nil
			}
		}
	}
	a.logger.Info("public key not accepted", "protocol", "sftp", "partner", user, "remote", host,
		"key", ssh.FingerprintSHA256(key))
	return "", ErrDenied
}

// LoggedIn records a successful public-key login (called once the client has
// proved it holds the key).
func (a *Authenticator) LoggedIn(protocol, partner, method string, remote net.Addr) {
	a.logger.Info("login", "protocol", protocol, "partner", partner, "method", method, "remote", hostOf(remote))
}

// hostOf returns the address without its port: a client reconnecting from
// another source port is the same client.
func hostOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}
