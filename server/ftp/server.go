// Package ftp is dropgate's embedded FTP(S) server, built on
// ftpserverlib: binary transfers only, explicit or implicit TLS, passive
// ports from the config, and each partner confined to its home.
package ftp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

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

// DefaultShutdownGrace is how long sessions with a transfer in progress may
// go on after Run's context is cancelled when Options.ShutdownGrace is zero.
const DefaultShutdownGrace = 5 * time.Second

// Options configure the FTP server.
type Options struct {
	// Config supplies [ftp], the data dir and the partners.
	Config *config.Config
	// Auth checks logins; it is shared with the SFTP server so failures
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
}

// Server is a bound FTP server. Run serves it.
type Server struct {
	driver   *mainDriver
	ftp      *ftpserver.FtpServer
	listener net.Listener
	grace    time.Duration
	logger   *slog.Logger
}

// New reads or generates the TLS pair (unless tls = "off") and binds the
// control listener.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Auth == nil {
		return nil, errors.New("ftp: Config and Auth are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "ftp")
	fc := opts.Config.FTP
	mode, err := parseTLSMode(fc.TLS)
	if err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if mode != tlsOff {
		if tlsConfig, err = loadOrCreateTLS(fc.TLSCert, fc.TLSKey, opts.Config.DataDir, fc.PublicHost); err != nil {
			return nil, err
		}
	}
	settings, err := settingsFor(fc, mode)
	if err != nil {
		return nil, err
	}
	raw, err := net.Listen("tcp", fc.Listen)
	if err != nil {
		return nil, fmt.Errorf("ftp.listen: cannot listen on %s: %w", fc.Listen, err)
	}
	reg := sessions.NewLimited(logger, sessions.Limits{
		MaxConnections: fc.MaxConnections,
		MaxPerIP:       fc.MaxConnectionsPerIP,
		MaxPerPartner:  fc.MaxSessionsPerPartner,
	})
	if fc.PassiveTimeout <= 0 {
		fc.PassiveTimeout = config.Duration(config.DefaultPassiveTimeout)
	}
	loginTimeout := fc.LoginTimeout.D()
	if loginTimeout <= 0 {
		loginTimeout = config.DefaultConnLimits().LoginTimeout.D()
	}
	control := &controlListener{
		Listener:     &banListener{Listener: raw, auth: opts.Auth, reg: reg, plain: mode != tlsImplicit},
		reg:          reg,
		plain:        mode != tlsImplicit,
		loginTimeout: loginTimeout,
		conns:        map[string]*controlConn{},
	}
	var ln net.Listener = control
	if mode == tlsImplicit {
		// ftpserverlib only wraps listeners it creates itself.
		ln = tls.NewListener(ln, tlsConfig)
	}
	settings.Listener = ln
	d := &mainDriver{
		cfg:            opts.Config,
		auth:           opts.Auth,
		notifier:       opts.Notifier,
		space:          opts.Space,
		logger:         logger,
		settings:       settings,
		tls:            tlsConfig,
		control:        control,
		sessions:       reg,
		passiveTimeout: fc.PassiveTimeout.D(),
		live:           map[uint32]*sessions.Session{},
	}
	guardActivePorts()
	srv := ftpserver.NewFtpServer(d)
	srv.Logger = logger.With("lib", "ftpserverlib")
	if err := srv.Listen(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("ftp: %w", err)
	}
	s := &Server{driver: d, ftp: srv, listener: raw, grace: opts.ShutdownGrace, logger: logger}
	if s.grace <= 0 {
		s.grace = DefaultShutdownGrace
	}
	logger.Info("FTP server bound", "addr", raw.Addr().String(), "tls", fc.TLS, "passive_ports", fc.PassivePorts)
	return s, nil
}

// Addr returns the bound control address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Close releases the control listener New bound, for a server that will
// not run (a later part of the daemon failed to start). Run closes it
// itself, so Close after Run does nothing.
func (s *Server) Close() error {
	if err := s.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("ftp: close: %w", err)
	}
	return nil
}

// Run serves until ctx is cancelled, then stops accepting, closes idle
// sessions, lets those with a transfer in progress finish it within the
// shutdown grace, closes those left and returns nil.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.ftp.Serve() }()
	var serveErr error
	select {
	case <-ctx.Done():
		// Stop closes the listeners only; sessions are ours to end.
		if err := s.ftp.Stop(); err != nil && !errors.Is(err, ftpserver.ErrNotListening) {
			s.logger.Warn("cannot stop listening", "err", err)
		}
		<-served
	case serveErr = <-served:
		if serveErr != nil {
			serveErr = fmt.Errorf("ftp: serve: %w", serveErr)
		}
		s.ftp.Stop()
	}
	s.driver.sessions.Drain(s.grace)
	return serveErr
}
