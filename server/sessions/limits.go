package sessions

import (
	"fmt"
	"net"
	"time"
)

// Limits bound a server's sessions. A zero field sets no bound.
type Limits struct {
	// MaxConnections bounds the sessions open at once, logged in or not.
	MaxConnections int
	// MaxPerIP bounds the sessions open at once from one address.
	MaxPerIP int
	// MaxPerPartner bounds one partner's logged-in sessions.
	MaxPerPartner int
	// Now is the clock of the refusal log's rate limit; nil is time.Now.
	Now func() time.Time
}

// Names of the limits, as the config spells them.
const (
	LimitConnections = "max_connections"
	LimitPerIP       = "max_connections_per_ip"
	LimitPerPartner  = "max_sessions_per_partner"
)

// LimitError is a connection or login refused because a limit is reached.
type LimitError struct {
	Limit string // one of the Limit* names
	Max   int
	Who   string // the address or partner held to the limit ("" for the total)
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case LimitPerIP:
		return fmt.Sprintf("too many connections from %s (at most %d); close some and try again", e.Who, e.Max)
	case LimitPerPartner:
		return fmt.Sprintf("too many sessions for partner %s (at most %d); close one and try again", e.Who, e.Max)
	}
	return fmt.Sprintf("too many connections (at most %d); try again later", e.Max)
}

// logEvery is the least time between two logs of refusals by the same
// limit: a flood of refused connections must not become a flood of logs.
const logEvery = 10 * time.Second

// Admit registers a new connection from remote, as Add does, unless that
// would pass MaxConnections or MaxPerIP: then it returns a *LimitError and
// the caller closes the connection.
func (r *Registry) Admit(remote net.Addr, close func() error) (*Session, error) {
	ip := hostOf(remote)
	r.mu.Lock()
	var err *LimitError
	switch {
	case r.limits.MaxConnections > 0 && len(r.live) >= r.limits.MaxConnections:
		err = &LimitError{Limit: LimitConnections, Max: r.limits.MaxConnections}
	case r.limits.MaxPerIP > 0 && r.perIP[ip] >= r.limits.MaxPerIP:
		err = &LimitError{Limit: LimitPerIP, Max: r.limits.MaxPerIP, Who: ip}
	}
	if err != nil {
		r.mu.Unlock()
		r.NoteLimit(err.Limit, "max", err.Max, "remote", ip)
		return nil, err
	}
	s := r.addLocked(close)
	s.ip = ip
	r.perIP[ip]++
	late := s.closing
	r.mu.Unlock()
	if late {
		go s.close()
	}
	return s, nil
}

// Login records that the session logged in as partner, unless the partner
// already has MaxPerPartner sessions: then it returns a *LimitError and the
// caller ends the session.
func (s *Session) Login(partner string) error {
	r := s.reg
	r.mu.Lock()
	if s.partner == partner || s.removed {
		r.mu.Unlock()
		return nil
	}
	if max := r.limits.MaxPerPartner; max > 0 && r.perPartner[partner] >= max {
		r.mu.Unlock()
		r.NoteLimit(LimitPerPartner, "max", max, "partner", partner, "remote", s.ip)
		return &LimitError{Limit: LimitPerPartner, Max: max, Who: partner}
	}
	r.forgetPartnerLocked(s) // FTP lets a session log in again as another partner
	s.partner = partner
	r.perPartner[partner]++
	r.mu.Unlock()
	return nil
}

// NoteLimit logs that limit (a config key, or another name for a refusal
// such as a ban) refused something, at most once per logEvery per limit;
// the next log says how many refusals went unlogged.
func (r *Registry) NoteLimit(limit string, attrs ...any) {
	now := r.now()
	r.logMu.Lock()
	st := r.refusals[limit]
	if st == nil {
		st = &refusalLog{}
		r.refusals[limit] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < logEvery {
		st.unlogged++
		r.logMu.Unlock()
		return
	}
	unlogged := st.unlogged
	st.last, st.unlogged = now, 0
	r.logMu.Unlock()
	args := append([]any{"limit", limit}, attrs...)
	if unlogged > 0 {
		args = append(args, "refused_unlogged_since_last", unlogged)
	}
	r.logger.Warn("refused: limit reached", args...)
}

func (r *Registry) forgetPartnerLocked(s *Session) {
	if s.partner == "" {
		return
	}
	if r.perPartner[s.partner]--; r.perPartner[s.partner] <= 0 {
		delete(r.perPartner, s.partner)
	}
	s.partner = ""
}

type refusalLog struct {
	last     time.Time
	unlogged int
}

func (r *Registry) now() time.Time {
	if r.limits.Now != nil {
		return r.limits.Now()
	}
	return time.Now()
}

// hostOf is an address without its port.
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}
