// Package admin serves dropgate's HTTP API, health probes and the status
// page for people.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/unsubscribe"
)

// Ban is one address refused by the login defender.
type Ban struct {
	Addr     string    `json:"addr"`
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"`
}

// Options are the admin server's dependencies.
type Options struct {
	Config *config.Config
	Store  *store.Store
	Logger *slog.Logger // nil discards logs, as in every component
	// Bans lists the defender's current bans; nil when no file server runs.
	Bans func() []Ban
	// Nudge wakes the sender after a job is queued, resumed or retried;
	// may be nil.
	Nudge func()
	// Compose checks and renders an API send as ingest does a CSV row
	// (ingest.Ingester.ComposeJob); nil answers POST /api/v1/messages with 501.
	Compose func(ctx context.Context, partner string, req ingest.APISend) (ingest.Composed, []ingest.Problem, error)
	// Storage refuses sends with 507 and makes /readyz unready while free
	// space is below the watermark, and feeds its metrics (storage.go);
	// may be nil.
	Storage Storage
	// Degraded says why a part of the daemon is not fully working ("" when
	// it is); /readyz answers 503 with it. May be nil.
	Degraded func() string
	// PutTemplate checks and stores a template as a dropped one is
	// (ingest.Ingester.PutTemplate); nil answers PUT with 501.
	PutTemplate func(ctx context.Context, partner, name, src string) (store.Template, bool, error)
	// CheckSuppressions checks API suppressions as suppress/ rows are
	// (ingest.Ingester.CheckSuppressions); nil answers POST with 501.
	CheckSuppressions func(partner string, entries []ingest.SuppressEntry) ([]store.Suppression, []ingest.Problem, error)
	// Workflows is the workflow engine (workflow.Engine) behind
	// POST /api/v1/events and the workflow routes; nil answers events
	// with 501 and lists no workflow.
	Workflows Workflows
	// CheckEvents checks API events as events/ rows are
	// (ingest.Ingester.CheckEvents).
	CheckEvents func(partner string, inputs []ingest.EventInput) ([]store.Event, []ingest.Problem, error)
	// SendToList checks and queues a list send (ingest.Ingester.SendToList);
	// nil answers POST /api/v1/lists/{list}/sends with 501.
	SendToList func(ctx context.Context, partner string, req ingest.ListSendRequest) (ingest.ListSendResult, []ingest.SendProblem, error)
	// PutContacts upserts API contacts into a list as list files are read
	// (ingest.Ingester.PutContacts); nil answers POST with 501.
	PutContacts func(ctx context.Context, partner, list string, entries []ingest.ContactEntry) (store.ListCounts, []ingest.Problem, error)
	// ContactKey normalises a contact key of a query as files' keys are
	// (ingest.Ingester.ContactKey); nil uses keys as given.
	ContactKey func(partner, column, value string) (key, msg string, err error)
	// Metrics are the daemon's counters, fed by the sender, the
	// authenticator and the file servers; nil makes an unfed set.
	Metrics *Metrics
	// Now is the clock of the rate limits and deadlines; nil is time.Now.
	Now func() time.Time
	// Unsubscribe opens the tokens of one-click unsubscribe links
	// (unsubscribe.go); nil ([admin] public_url unset) answers /u/ with 404.
	Unsubscribe *unsubscribe.Links
}

// Server is the admin HTTP server.
type Server struct {
	opts    Options
	logger  *slog.Logger
	tokens  []tokenEntry
	ln      net.Listener
	handler http.Handler
	limits  *partnerLimits
	console *console
	tlsOn   bool
	sends   *sendGroups // group commit of API sends (sendgroup.go)
	// unsubLimit bounds the public unsubscribes (unsubscribe.go).
	unsubLimit *rate.Limiter
	minutes    minuteCache // the overview's chart rows (console_minutes.go)
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// New binds the admin listener and builds the handler.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, logger: opts.Logger.With("component", "admin"), tokens: newTokenEntries(opts.Config),
		limits: newPartnerLimits(opts.Config.Admin.PartnerRate, opts.Config.Admin.PartnerBurst),
		sends:  newSendGroups(opts.Store), unsubLimit: newUnsubscribeLimiter()}
	key, err := opts.Store.ConsoleKey(context.Background())
	if err != nil {
		return nil, err
	}
	if s.console, err = newConsole(key); err != nil {
		return nil, fmt.Errorf("cannot load the status console: %w", err)
	}
	s.handler = s.routes()
	tlsConfig, err := loadTLS(opts.Config)
	if err != nil {
		return nil, err
	}
	s.tlsOn = tlsConfig != nil
	ln, err := net.Listen("tcp", opts.Config.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for admin HTTP on %s: %w", opts.Config.Admin.Listen, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	} else if !isLoopback(opts.Config.Admin.Listen) {
		// Tokens and session cookies would cross the network in the clear.
		s.logger.Warn("the admin API listens beyond this machine without TLS: tokens travel in the clear; set [admin] tls = \"on\" with tls_cert/tls_key, or tls = \"self-signed\"",
			"addr", opts.Config.Admin.Listen)
	}
	s.ln = ln
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close releases the listener New bound, for a server that will not run
// (a later part of the daemon failed to start). Run's shutdown closes it
// itself, so Close after Run does nothing.
func (s *Server) Close() error {
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("admin HTTP close: %w", err)
	}
	return nil
}

// Handler returns the server's HTTP handler (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves until ctx is cancelled, then lets open requests finish for a
// few seconds.
func (s *Server) Run(ctx context.Context) error {
	a := s.opts.Config.Admin
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: a.HeaderTimeout.D(),
		// A backstop: readBody sets each body's own deadline once the
		// request is authenticated; this bounds a body nobody reads.
		ReadTimeout:    a.HeaderTimeout.D() + a.BodyTimeout.D(),
		IdleTimeout:    a.IdleTimeout.D(),
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	go s.pruneMinutes(ctx)
	s.logger.Info("admin HTTP listening", "addr", s.ln.Addr().String(), "tls", s.tlsOn)
	select {
	case err := <-errc:
		return fmt.Errorf("admin HTTP stopped: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("admin HTTP shutdown: %w", err)
	}
	return nil
}

// wrap adapts a handlerFunc: it encodes the returned error as JSON.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.logger, err)
		}
	})
}

// authed requires a valid bearer token and, for a partner key, a token
// of its rate limit, and stores the principal in the request context. Both
// are checked before any handler reads the body.
func (s *Server) authed(h handlerFunc) http.Handler {
	return s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		p, ok := authenticate(s.tokens, r)
		if !ok {
			return errUnauthorized()
		}
		if !p.admin {
			if ok, wait := s.limits.allow(p.partner, s.now()); !ok {
				return errRateLimited(wait)
			}
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// adminOnly requires an admin token.
func (s *Server) adminOnly(h handlerFunc) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request) error {
		if !principalFrom(r.Context()).admin {
			return errForbidden("this endpoint needs an admin token")
		}
		return h(w, r)
	})
}

// pruneMinutes drops the console chart's per-minute tallies older than two
// days, at start and then hourly, until ctx ends.
func (s *Server) pruneMinutes(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.opts.Store.PruneChannelMinutes(ctx, s.now().Add(-48*time.Hour)); err != nil && ctx.Err() == nil {
			s.logger.Warn("cannot prune the chart's minutes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
