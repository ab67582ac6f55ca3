package store

import (
	"context"
	"sync"
	"time"
)

// While API events arrive in large groups, the writer checkpoints as it
// does for a file job (bulkWAL, jobwriter_wal.go) and the checkpointer
// stands aside. Events from partners' systems carry ids (UUIDs) and
// contacts in no order, so each commit rewrites hundreds to thousands of
// the two indexes' pages (events' ids, runs' contacts) into the WAL; the
// writer's backstop checkpoint at autoCheckpointPages then came every
// second or third group and copied those pages into the database again
// each time (with an fsync), a sixth of the writer's time
// (workflow/BENCHMARKS.md, session 11). With the bulk threshold a page
// rewritten by many groups is copied once per checkpoint. The burst ends
// once no group came for eventBurstIdle (the checkpointer looks), and
// ending it checkpoints what it wrote.
const (
	// eventBurstMin is the smallest group that starts a burst: one API
	// batch of the usual size; single events never do.
	eventBurstMin = 1000
	// eventBurstIdle is how long after its last group a burst ends.
	eventBurstIdle = time.Second
)

// eventBurst is whether the event groups hold a bulkWAL, and when the
// last group was stored.
type eventBurst struct {
	mu   sync.Mutex
	on   bool
	last time.Time
	idle time.Duration // eventBurstIdle; a test's own, when set
}

// noteEventGroup is called before a group of n events is stored: it
// starts a burst for a large group and keeps one going.
func (s *Store) noteEventGroup(ctx context.Context, n int, now time.Time) {
	if s.pg {
		return // no WAL of ours
	}
	b := &s.evBurst
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on && n < eventBurstMin {
		return
	}
	if !b.on {
		s.beginBulk(context.WithoutCancel(ctx))
		b.on = true
	}
	b.last = now
}

// endIdleEventBurst ends the burst when its last group is eventBurstIdle
// before now, and reports whether it did.
func (s *Store) endIdleEventBurst(ctx context.Context, now time.Time) bool {
	b := &s.evBurst
	b.mu.Lock()
	idle := b.idle
	if idle == 0 {
		idle = eventBurstIdle
	}
	if !b.on || now.Sub(b.last) < idle {
		b.mu.Unlock()
		return false
	}
	b.on = false
	b.mu.Unlock()
	// A group starting meanwhile begins a hold of its own first: the
	// threshold goes back only when the last hold ends.
	s.endBulk(ctx)
	return true
}
