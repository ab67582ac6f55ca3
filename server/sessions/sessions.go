// Package sessions keeps the file servers' live sessions and their open
// transfers, so that stopping closes an idle session at once, a busy one as
// soon as its transfer ends, and everything left when the grace runs out.
//
// A partner's client that merely stays connected (an FTP system keeping its
// control connection, an SFTP client at its prompt) must not hold every stop
// of the daemon for the whole grace.
package sessions

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrShuttingDown refuses a transfer opened after stop was requested.
var ErrShuttingDown = errors.New("the server is shutting down and accepts no new transfers; reconnect in a moment and retry")

// Registry is one server's set of live sessions. The zero value is not
// usable; call New.
type Registry struct {
	logger   *slog.Logger
	limits   Limits
	stopping atomic.Bool

	mu         sync.Mutex
	live       map[*Session]struct{}
	perIP      map[string]int // sessions admitted by address
	perPartner map[string]int // logged-in sessions by partner
	// empty is closed once stopping and no session is left.
	empty     chan struct{}
	emptyOnce sync.Once
	// How sessions were closed during the stop, for the summary log.
	closedIdle, closedAfterTransfer, closedAtGraceEnd int

	logMu    sync.Mutex
	refusals map[string]*refusalLog // by limit
}

// Session is one client connection as the registry sees it.
type Session struct {
	reg   *Registry
	close func() error
	ip    string // set by Admit
	// partner is set by Login. Guarded by reg.mu.
	partner string

	// Guarded by reg.mu.
	transfers int
	closing   bool // closed by the registry (or about to be)
	replyDue  bool // a transfer ended during the stop: close after its reply
	removed   bool
}

// New returns an empty registry without limits that logs to logger.
func New(logger *slog.Logger) *Registry { return NewLimited(logger, Limits{}) }

// NewLimited returns an empty registry that holds sessions to limits (see
// Admit and Session.Login) and logs to logger.
func NewLimited(logger *slog.Logger, limits Limits) *Registry {
	return &Registry{
		logger: logger, limits: limits,
		live: map[*Session]struct{}{}, perIP: map[string]int{}, perPartner: map[string]int{},
		refusals: map[string]*refusalLog{},
		empty:    make(chan struct{}),
	}
}

// Add registers a session, outside the connection limits; close ends its
// connection. close is always called on its own goroutine, so it may block
// on the protocol library's locks. A session added after the stop began is
// closed at once.
func (r *Registry) Add(close func() error) *Session {
	r.mu.Lock()
	s := r.addLocked(close)
	late := s.closing
	r.mu.Unlock()
	if late {
		go s.close()
	}
	return s
}

func (r *Registry) addLocked(close func() error) *Session {
	s := &Session{reg: r, close: close}
	r.live[s] = struct{}{}
	if r.stopping.Load() {
		s.closing = true
		r.closedIdle++
	}
	return s
}

// Remove forgets a session whose connection has ended, for whatever reason.
// It is idempotent.
func (s *Session) Remove() {
	r := s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.removed {
		return
	}
	s.removed = true
	delete(r.live, s)
	if s.ip != "" {
		if r.perIP[s.ip]--; r.perIP[s.ip] <= 0 {
			delete(r.perIP, s.ip)
		}
	}
	r.forgetPartnerLocked(s)
	if r.stopping.Load() && len(r.live) == 0 {
		r.emptyOnce.Do(func() { close(r.empty) })
	}
}

// BeginTransfer records a file opened for reading or writing. After the
// stop began it refuses with ErrShuttingDown: the session is about to be
// closed and a transfer started now would only be cut.
func (s *Session) BeginTransfer() error {
	r := s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping.Load() {
		return ErrShuttingDown
	}
	s.transfers++
	return nil
}

// EndTransfer records that a file opened by BeginTransfer was closed.
// During the stop the session is then closed after its next reply (see
// Replied), so the client learns the transfer's outcome first.
func (s *Session) EndTransfer() {
	r := s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	s.transfers--
	if r.stopping.Load() && s.transfers == 0 && !s.closing {
		s.replyDue = true
	}
}

// Replied is called by the connection once a reply has gone out and it owes
// the client no other (SFTP: every request read is answered; FTP: a reply
// line was written). It closes a session whose last transfer ended during
// the stop, now that the client has the outcome of that transfer.
func (s *Session) Replied() {
	r := s.reg
	if !r.stopping.Load() {
		return // the common case: one atomic load per reply
	}
	r.mu.Lock()
	if !s.replyDue || s.closing || s.transfers > 0 {
		r.mu.Unlock()
		return
	}
	s.closing = true
	r.closedAfterTransfer++
	left := len(r.live) - 1
	r.mu.Unlock()
	r.logger.Info("shutting down: transfer ended; session closed", "sessions_left", left)
	go s.close()
}

// Drain stops the registry: idle sessions are closed at once, sessions with
// a transfer in progress go on until it ends or the grace runs out, when
// the rest are closed. It returns once every session has been removed, or
// after a further bound if some connection never reports its end.
func (r *Registry) Drain(grace time.Duration) {
	r.mu.Lock()
	r.stopping.Store(true)
	var idle []*Session
	busy := 0
	for s := range r.live {
		switch {
		case s.closing:
		case s.transfers == 0:
			s.closing = true
			idle = append(idle, s)
		default:
			busy++
		}
	}
	r.closedIdle += len(idle)
	if len(r.live) == 0 {
		r.emptyOnce.Do(func() { close(r.empty) })
	}
	r.mu.Unlock()
	for _, s := range idle {
		go s.close()
	}
	if len(idle) > 0 || busy > 0 {
		r.logger.Info("shutting down: closed idle sessions; sessions mid-transfer may finish",
			"idle_closed", len(idle), "transferring", busy, "grace", grace)
	}

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-r.empty:
	case <-timer.C:
		r.mu.Lock()
		var rest []*Session
		for s := range r.live {
			if !s.closing {
				s.closing = true
				rest = append(rest, s)
			}
		}
		r.closedAtGraceEnd += len(rest)
		r.mu.Unlock()
		for _, s := range rest {
			go s.close()
		}
		if len(rest) > 0 {
			r.logger.Info("shutdown grace over; closed sessions still transferring",
				"sessions", len(rest), "grace", grace)
		}
		// A closed connection reports its end promptly; do not hang the
		// stop on one that never does.
		select {
		case <-r.empty:
		case <-time.After(5 * time.Second):
			r.logger.Warn("sessions did not end after being closed", "sessions", r.Live())
		}
	}
	r.mu.Lock()
	idleN, afterN, graceN := r.closedIdle, r.closedAfterTransfer, r.closedAtGraceEnd
	r.mu.Unlock()
	if idleN+afterN+graceN > 0 {
		r.logger.Info("sessions closed at stop", "idle", idleN, "after_transfer", afterN, "at_grace_end", graceN)
	}
}

// Live returns the number of sessions not yet removed.
func (r *Registry) Live() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}
