// Package sftp is dropgate's embedded SFTP server: SSH with modern
// algorithms only, password or key login for partners, and only the sftp
// subsystem, confined to the partner's home.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// Notifier learns at once that an upload is complete and in place.
// ingest.Ingester implements it.
type Notifier interface {
	FileComplete(partner, relPath string)
}

var _ homefs.Notifier = Notifier(nil)

// Defaults for Options left zero.
const (
	DefaultShutdownGrace    = 5 * time.Second
	DefaultHandshakeTimeout = 30 * time.Second
)

// Options configure the SFTP server.
type Options struct {
	// Config supplies [sftp], the data dir and the partners.
	Config *config.Config
	// Auth checks logins; it is shared with the FTP server so failures
	// count together.
	Auth *auth.Authenticator
	// Notifier is told about completed uploads; it may be nil.
	Notifier Notifier
	// Space refuses uploads while storage is short; it may be nil.
	Space homefs.Space
	// Logger is the daemon's logger; nil discards logs.
	Logger *slog.Logger
	// ShutdownGrace is how long a session with a transfer in progress may
	// go on after Run's context is cancelled (DefaultShutdownGrace when
	// zero); idle sessions are closed at once.
	ShutdownGrace time.Duration
	// HandshakeTimeout bounds the SSH handshake and login; when zero,
	// [sftp] login_timeout does (DefaultHandshakeTimeout when that is zero
	// too).
	HandshakeTimeout time.Duration
}

// Server is a bound SFTP server. Run serves it.
type Server struct {
	cfg       *config.Config
	auth      *auth.Authenticator
	notifier  Notifier
	space     homefs.Space
	logger    *slog.Logger
	sshConfig *ssh.ServerConfig
	listener  net.Listener
	grace     time.Duration
	handshake time.Duration

	sessions *sessions.Registry
	wg       sync.WaitGroup
}

// New loads (or generates, once) the host key and binds the listener.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Auth == nil {
		return nil, errors.New("sftp: Config and Auth are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "sftp")
	signer, keyPath, err := loadOrCreateHostKey(opts.Config.SFTP.HostKey, opts.Config.DataDir)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Config.SFTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("sftp.listen: cannot listen on %s: %w", opts.Config.SFTP.Listen, err)
	}
	s := &Server{
		cfg:       opts.Config,
		auth:      opts.Auth,
		notifier:  opts.Notifier,
		space:     opts.Space,
		logger:    logger,
		sshConfig: sshConfig(signer, opts.Auth, opts.Config.SFTP),
		listener:  ln,
		grace:     opts.ShutdownGrace,
		handshake: opts.HandshakeTimeout,
		sessions: sessions.NewLimited(logger, sessions.Limits{
			MaxConnections: opts.Config.SFTP.MaxConnections,
			MaxPerIP:       opts.Config.SFTP.MaxConnectionsPerIP,
			MaxPerPartner:  opts.Config.SFTP.MaxSessionsPerPartner,
		}),
	}
	if s.grace <= 0 {
		s.grace = DefaultShutdownGrace
	}
	if s.handshake <= 0 {
		s.handshake = opts.Config.SFTP.LoginTimeout.D()
	}
	if s.handshake <= 0 {
		s.handshake = DefaultHandshakeTimeout
	}
	logger.Info("SFTP server bound", "addr", ln.Addr().String(), "host_key", keyPath,
		"fingerprint", ssh.FingerprintSHA256(signer.PublicKey()))
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Close releases the listener New bound, for a server that will not run
// (a later part of the daemon failed to start). Run closes it itself, so
// Close after Run does nothing.
func (s *Server) Close() error {
	if err := s.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("sftp: close: %w", err)
	}
	return nil
}

// Run serves until ctx is cancelled, then stops accepting, closes idle
// sessions, lets those with a transfer in progress finish it within the
// shutdown grace, closes those left and returns nil.
// It returns an error only if accepting fails for another reason.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.listener.Close() })
	defer stop()
	var acceptErr error
	for {
		c, err := s.listener.Accept()
		if err != nil {
			if ctx.Err() == nil {
				acceptErr = fmt.Errorf("sftp: accept: %w", err)
				s.listener.Close()
			}
			break
		}
		if s.auth.Banned(c.RemoteAddr()) {
			s.sessions.NoteLimit("defender_ban", "remote", remoteOf(c))
			c.Close()
			continue
		}
		// Admitted before the handshake, so connections still logging in
		// count against the limits and are closed at stop like idle ones.
		// A refused one is just closed: SSH has no reply before its
		// version exchange (the registry logs the refusal).
		sess, err := s.sessions.Admit(c.RemoteAddr(), c.Close)
		if err != nil {
			c.Close()
			continue
		}
		s.wg.Go(func() {
			defer sess.Remove()
			defer c.Close()
			s.serveConn(c, sess)
		})
	}
	s.drain()
	return acceptErr
}

// drain closes idle sessions, waits up to the grace for transfers to end,
// closes the rest and waits for their goroutines.
func (s *Server) drain() {
	s.sessions.Drain(s.grace)
	s.wg.Wait()
}
