package auth

import (
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dropgate/dropgate/config"
)

// Ban is an address refused until a time.
type Ban struct {
	// Addr is the remote IP address, without port.
	Addr string
	// Until is when the ban ends.
	Until time.Time
	// Failures is how many failed logins led to the ban.
	Failures int
}

// defender counts failed logins per address in a sliding window and bans
// an address that reaches the limit.
type defender struct {
	cfg    config.DefenderConfig
	now    func() time.Time
	logger *slog.Logger

	mu       sync.Mutex
	failures map[string][]time.Time // recent failure times, oldest first
	bans     map[string]Ban

	// shared, when set, holds the bans and failures of every node
	// (defender_shared.go); checked is when each address was last looked
	// up there, and node names this node in the bans it makes.
	shared  SharedBans
	checked map[string]time.Time
	node    string
	pruned  time.Time // when the shared failures were last pruned
}

func newDefender(cfg config.DefenderConfig, now func() time.Time, logger *slog.Logger) *defender {
	return &defender{cfg: cfg, now: now, logger: logger,
		failures: map[string][]time.Time{}, bans: map[string]Ban{}, checked: map[string]time.Time{}}
}

// enabled is false when the config turns the defender off (max_failures = 0).
func (d *defender) enabled() bool { return d.cfg.MaxFailures > 0 }

func (d *defender) banned(host string) bool {
	if !d.enabled() {
		return false
	}
	d.mu.Lock()
	b, ok := d.bans[host]
	if ok && d.now().Before(b.Until) {
		d.mu.Unlock()
		return true
	}
	if ok {
		delete(d.bans, host)
	}
	d.mu.Unlock()
	return d.shared != nil && d.sharedBanned(host)
}

// fail counts a failed login and reports whether it banned the address.
func (d *defender) fail(host string) bool {
	if !d.enabled() {
		return false
	}
	if d.shared != nil {
		if banned, ok := d.sharedFail(host); ok {
			return banned
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	recent := d.failures[host]
	cutoff := now.Add(-d.cfg.Window.D())
	i := 0
	for i < len(recent) && !recent[i].After(cutoff) {
		i++
	}
	recent = append(recent[i:], now)
	if len(recent) < d.cfg.MaxFailures {
		d.failures[host] = recent
		d.pruneLocked(cutoff)
		return false
	}
	delete(d.failures, host)
	b := Ban{Addr: host, Until: now.Add(d.cfg.BanTime.D()), Failures: len(recent)}
	d.bans[host] = b
	d.logger.Warn("address banned after repeated failed logins", "remote", host, "failures", b.Failures,
		"window", d.cfg.Window.D(), "until", b.Until)
	return true
}

// pruneLocked drops stale entries so a scan of many addresses cannot grow
// the maps forever.
func (d *defender) pruneLocked(cutoff time.Time) {
	if len(d.failures) < 1024 {
		return
	}
	for host, times := range d.failures {
		if len(times) == 0 || !times[len(times)-1].After(cutoff) {
			delete(d.failures, host)
		}
	}
}

// Bans lists the addresses banned now, soonest to end first.
func (a *Authenticator) Bans() []Ban {
	d := a.defender
	if d.shared != nil {
		if out, ok := d.sharedBans(); ok {
			return out
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	out := make([]Ban, 0, len(d.bans))
	for host, b := range d.bans {
		if !now.Before(b.Until) {
			delete(d.bans, host)
			continue
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Until.Before(out[j].Until) })
	return out
}
