package auth

import (
	"context"
	"errors"
	"time"

	"github.com/dropgate/dropgate/store"
)

// SharedBans keeps the defender's bans and failure counts where every node
// sees them: the database, when several nodes share one PostgreSQL. A ban
// made on one node then holds on every node, and failures on any node
// count together. *store.Store implements it.
type SharedBans interface {
	PutBan(ctx context.Context, b store.DefenderBan, now time.Time) error
	BanOf(ctx context.Context, addr string, now time.Time) (store.DefenderBan, error)
	Bans(ctx context.Context, now time.Time) ([]store.DefenderBan, error)
	AddLoginFailure(ctx context.Context, addr string, now, since time.Time) (int, error)
	ClearLoginFailures(ctx context.Context, addr string) error
	PruneLoginFailures(ctx context.Context, since time.Time) error
}

// sharedCheckEvery is how long a node trusts its last look at the shared
// bans for an address: a ban made elsewhere holds here within it, and a
// client retrying fast costs one query per interval, not one per try.
const sharedCheckEvery = 2 * time.Second

// sharedTimeout bounds one query to the shared bans: a login must not
// hang on a slow database. A failed query leaves the node's own view.
const sharedTimeout = 2 * time.Second

// sharedBanned reports whether the shared bans hold host, looking at most
// every sharedCheckEvery; a ban found is kept locally until it ends.
func (d *defender) sharedBanned(host string) bool {
	now := d.now()
	d.mu.Lock()
	last, seen := d.checked[host]
	d.mu.Unlock()
	if seen && now.Sub(last) < sharedCheckEvery && !now.Before(last) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	b, err := d.shared.BanOf(ctx, host, now)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.checked) >= 4096 {
		clear(d.checked) // a scan of many addresses: start the cache over
	}
	d.checked[host] = now
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false
	case err != nil:
		d.logger.Error("cannot read the shared bans; this node's own bans still hold", "remote", host, "err", err)
		return false
	}
	d.bans[host] = Ban{Addr: host, Until: b.Until, Failures: b.Failures}
	return now.Before(b.Until)
}

// sharedFail counts a failure in the shared table and bans host there
// once the failures of every node reach the limit. ok is false when the
// database could not be asked: the node then counts on its own.
func (d *defender) sharedFail(host string) (banned, ok bool) {
	now := d.now()
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	n, err := d.shared.AddLoginFailure(ctx, host, now, now.Add(-d.cfg.Window.D()))
	if err != nil {
		d.logger.Error("cannot count a failed login in the shared table; counting on this node", "remote", host, "err", err)
		return false, false
	}
	d.mu.Lock()
	prune := now.Sub(d.pruned) >= d.cfg.Window.D()
	if prune {
		d.pruned = now
	}
	d.mu.Unlock()
	if prune {
		// Addresses that failed once and went away: at most once a window.
		if err := d.shared.PruneLoginFailures(ctx, now.Add(-d.cfg.Window.D())); err != nil {
			d.logger.Warn("cannot prune old login failures", "err", err)
		}
	}
	if n < d.cfg.MaxFailures {
		return false, true
	}
	b := Ban{Addr: host, Until: now.Add(d.cfg.BanTime.D()), Failures: n}
	if err := d.shared.PutBan(ctx, store.DefenderBan{Addr: host, Until: b.Until, Failures: n, Node: d.node}, now); err != nil {
		d.logger.Error("cannot share a ban; it holds on this node only", "remote", host, "err", err)
	} else if err := d.shared.ClearLoginFailures(ctx, host); err != nil {
		d.logger.Warn("cannot clear the failures of a banned address", "remote", host, "err", err)
	}
	d.mu.Lock()
	d.bans[host] = b
	delete(d.failures, host)
	d.mu.Unlock()
	d.logger.Warn("address banned after repeated failed logins (on every node)", "remote", host, "failures", n,
		"window", d.cfg.Window.D(), "until", b.Until)
	return true, true
}

// sharedBans lists the bans in force on every node; ok is false when the
// database could not be asked.
func (d *defender) sharedBans() ([]Ban, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	bs, err := d.shared.Bans(ctx, d.now())
	if err != nil {
		d.logger.Error("cannot list the shared bans; listing this node's", "err", err)
		return nil, false
	}
	out := make([]Ban, 0, len(bs))
	for _, b := range bs {
		out = append(out, Ban{Addr: b.Addr, Until: b.Until, Failures: b.Failures})
	}
	return out, true
}
