package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropgate/dropgate/internal/groupcommit"
)

// Concurrent AcceptEvents calls share a transaction (a group commit,
// internal/groupcommit, as API sends do). Whoever finds no transaction
// under way takes the queue as it is (up to maxGroupEvents events, at
// least one call) and stores it as one batch: the calls' events one after
// the other, each call's in its order, so that the group acts as the calls
// would have one after the other (an event id repeated by a later call of
// the group is a repeat, as it would be a moment later). The calls that arrive meanwhile form the next
// group, led by the first of them. While one group is written, the
// requests behind it decode and check their events on the other core:
// with one call at a time (workflow/BENCHMARKS.md, session 8) nothing
// overlapped. No call is answered before the commit that stored it, and
// none waits on a timer.
//
// When a group of several calls fails, each call is stored again alone,
// in its own transaction, so that what fails one call (its events, or
// the fault a test injects) fails no other.

// maxGroupEvents bounds the events of one group, so that a group does not
// hold the writer (and the calls queued behind it) for long; a call of
// more (10,000 from the API) still goes, alone.
const maxGroupEvents = 10_000

// eventGroups is the queue of AcceptEvents calls.
type eventGroups struct {
	once  sync.Once
	queue *groupcommit.Queue[*groupedEvents]

	// groups and grouped count transactions and the calls they stored;
	// storing is the time spent storing groups (ns).
	groups, grouped, storing atomic.Int64

	// all and prep are storeGroup's lists of a group's events, kept for
	// the next group: made per group they were a twentieth of an event's
	// garbage (workflow/BENCHMARKS.md, session 11).
	all  []EventWrite
	prep []eventPrep

	// fail, when set, is called with each transaction's events before
	// its commit; an error rolls it back (SetAcceptEventsFault).
	fail atomic.Pointer[func([]EventWrite) error]
}

// calls returns the queue, made on first use.
func (g *eventGroups) calls() *groupcommit.Queue[*groupedEvents] {
	g.once.Do(func() {
		g.queue = groupcommit.New(maxGroupEvents, func(p *groupedEvents) int { return len(p.events) })
	})
	return g.queue
}

// groupedEvents is one AcceptEvents call waiting in a group.
type groupedEvents struct {
	events []EventWrite
	prep   []eventPrep // made on the caller's goroutine, before it queues
	now    time.Time
	res    []EventResult
	err    error
}

// SetAcceptEventsFault makes every later AcceptEvents transaction call fn
// with its events (a group's: every call's, in order) just before its
// commit; an error rolls the transaction back and is the error of its
// calls. For tests of a failing call in a group; nil removes it.
func (s *Store) SetAcceptEventsFault(fn func([]EventWrite) error) {
	if fn == nil {
		s.evGroups.fail.Store(nil)
		return
	}
	s.evGroups.fail.Store(&fn)
}

// EventGroupStats says how AcceptEvents calls were grouped.
type EventGroupStats struct {
	// Transactions is how many transactions AcceptEvents ran, and Calls
	// how many calls they held (a failed group's calls count again, each
	// alone).
	Transactions, Calls int64
	// Waiting is how many calls wait for the transaction under way.
	Waiting int
	// Busy is the time spent storing groups: while it grows as fast as
	// the wall clock, the writer is what bounds the events' rate.
	Busy time.Duration
}

// EventGroups returns how AcceptEvents calls were grouped so far, for
// benchmarks (calls per transaction) and tests (calls queued).
func (s *Store) EventGroups() EventGroupStats {
	g := &s.evGroups
	return EventGroupStats{Transactions: g.groups.Load(), Calls: g.grouped.Load(), Waiting: g.calls().Waiting(), Busy: time.Duration(g.storing.Load())}
}

// acceptGrouped stores one call's events, alone or with other calls', and
// returns after the commit that stored them. ctx's cancellation does not
// stop a group others depend on (acceptEventsOnce ignores it anyway).
func (s *Store) acceptGrouped(ctx context.Context, events []EventWrite, now time.Time) ([]EventResult, error) {
	pe := prepareEvents(events)
	defer pe.release()
	p := &groupedEvents{events: events, prep: pe.ev, now: now}
	s.evGroups.calls().Do(ctx, p, func(ctx context.Context, group []*groupedEvents) {
		start := time.Now()
		s.storeGroup(ctx, group, start)
		s.evGroups.storing.Add(int64(time.Since(start)))
	})
	return p.res, p.err
}

// storeGroup stores a group's calls in one transaction, or, when that
// fails and there are several, each in its own; it sets every call's
// result or error. A large group starts an event burst (events_burst.go).
func (s *Store) storeGroup(ctx context.Context, group []*groupedEvents, started time.Time) {
	total := 0
	for _, p := range group {
		total += len(p.events)
	}
	s.noteEventGroup(ctx, total, started)
	if len(group) == 1 {
		p := group[0]
		p.res, p.err = s.acceptCall(ctx, p.events, p.prep, p.now, 1)
		return
	}
	// The group's lists are the leader's to reuse: groups are stored one
	// at a time (groupcommit), and nothing keeps them past acceptCall.
	g := &s.evGroups
	all, prep := g.all[:0], g.prep[:0]
	now := group[0].now
	for _, p := range group {
		all = append(all, p.events...)
		prep = append(prep, p.prep...)
		if p.now.After(now) {
			now = p.now
		}
	}
	defer func() { // emptied, so that they keep no event alive
		clear(all)
		clear(prep)
		g.all, g.prep = all[:0], prep[:0]
		if cap(all) > 4096 { // a group of the largest calls is not kept
			g.all, g.prep = nil, nil
		}
	}()
	res, err := s.acceptCall(ctx, all, prep, now, len(group))
	if err != nil {
		for _, p := range group {
			p.res, p.err = s.acceptCall(ctx, p.events, p.prep, p.now, 1)
		}
		return
	}
	for _, p := range group {
		p.res, res = res[:len(p.events):len(p.events)], res[len(p.events):]
	}
}

// acceptCall is one transaction of acceptGrouped, a panic turned into its
// error: the calls queued behind it wait for its hand-over, which must
// happen.
func (s *Store) acceptCall(ctx context.Context, events []EventWrite, prep []eventPrep, now time.Time, calls int) (res []EventResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("cannot store events: %v", p)
		}
	}()
	s.evGroups.groups.Add(1)
	s.evGroups.grouped.Add(int64(calls))
	return s.acceptEvents(ctx, events, prep, now, 0, 0)
}
