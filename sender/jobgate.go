package sender

import (
	"context"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// jobGateTTL is how long a job's status is trusted before it is read again.
const jobGateTTL = 100 * time.Millisecond

// jobGate answers "may this job's messages still go out?" for messages
// claimed before a pause or cancel: without it, up to two claimed batches
// of a paused job would still be sent. Statuses are cached briefly so the
// check costs one read per job every jobGateTTL, not one per message;
// Nudge (which the admin API calls after each job action) clears the cache.
type jobGate struct {
	store *store.Store

	mu     sync.Mutex
	status map[int64]gateEntry
}

type gateEntry struct {
	status string
	at     time.Time
}

func newJobGate(st *store.Store) *jobGate {
	return &jobGate{store: st, status: map[int64]gateEntry{}}
}

// open reports whether the job is still sending (queued or sending). A
// failed read lets the message go: the gate is an optimisation of pause and
// cancel, not what makes them correct.
func (g *jobGate) open(ctx context.Context, jobID int64) bool {
	g.mu.Lock()
	e, ok := g.status[jobID]
	g.mu.Unlock()
	if !ok || time.Since(e.at) > jobGateTTL {
		st, err := g.store.JobStatus(ctx, jobID)
		if err != nil {
			return true
		}
		e = gateEntry{status: st, at: time.Now()}
		g.mu.Lock()
		g.status[jobID] = e
		g.mu.Unlock()
	}
	return e.status == store.JobQueued || e.status == store.JobSending
}

// forget drops every cached status.
func (g *jobGate) forget() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.status)
}
