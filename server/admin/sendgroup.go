package admin

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/dropgate/dropgate/internal/groupcommit"
	"github.com/dropgate/dropgate/store"
)

// maxGroupMessages bounds the messages of one group commit, so that a
// group of large batches does not hold the writer (and the sends queued
// behind it) for long. A group always takes at least one send.
const maxGroupMessages = 2048

// sendGroups makes concurrent API sends share a commit
// (internal/groupcommit): whoever finds no commit under way stores the
// queue as it is in one transaction (store.CreateAPIJobs); no send is
// answered before the commit that stored it.
type sendGroups struct {
	st    *store.Store
	queue *groupcommit.Queue[*groupedSend]

	// groups and grouped count commits and the sends they stored, for the
	// benchmarks' sends per commit.
	groups, grouped atomic.Int64
}

func newSendGroups(st *store.Store) *sendGroups {
	return &sendGroups{st: st, queue: groupcommit.New(maxGroupMessages, func(p *groupedSend) int { return len(p.in.Msgs) })}
}

// groupedSend is one send waiting in a group.
type groupedSend struct {
	in  store.APISend
	res store.APIResult
}

// create stores one send, alone or with others, and returns its result
// only after the commit that stored it. ctx's cancellation does not stop
// a group others depend on: the request's client may have gone, the send
// is stored as it would have been alone, and a retry with its
// Idempotency-Key finds it.
func (g *sendGroups) create(ctx context.Context, in store.APISend) store.APIResult {
	p := &groupedSend{in: in}
	g.queue.Do(ctx, p, g.commit)
	return p.res
}

// commit stores a group's sends in one transaction and answers each.
func (g *sendGroups) commit(ctx context.Context, group []*groupedSend) {
	sends := make([]store.APISend, len(group))
	for i, p := range group {
		sends[i] = p.in
	}
	g.groups.Add(1)
	g.grouped.Add(int64(len(sends)))
	res, err := g.store(ctx, sends)
	for i, p := range group {
		if err != nil {
			p.res = store.APIResult{Err: err}
		} else {
			p.res = res[i]
		}
	}
}

// store is CreateAPIJobs turning a panic into the group's error: the sends
// queued behind this one wait for its hand-over, which must happen.
func (g *sendGroups) store(ctx context.Context, sends []store.APISend) (res []store.APIResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("cannot store API sends: %v", p)
		}
	}()
	return g.st.CreateAPIJobs(ctx, sends)
}
