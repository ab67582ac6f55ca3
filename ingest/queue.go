package ingest

import (
	"context"
	"sync"
)

// workItem is one complete file to ingest, relative to a partner's home.
type workItem struct {
	partner string
	rel     string
}

// workQueue holds the complete files waiting to be ingested and hands them
// to the ingest workers, partners in turn: one partner's huge or slow file
// takes one worker, never the others' turns. A partner has at most one file
// in progress at a time, so its files are read in the order they became
// complete (its templates first) and its duplicate check (same content
// already queued) never races with itself.
//
// A file already waiting or being ingested is not added again, which is
// what keeps a file that both the embedded server and the watcher report
// from being read twice.
type workQueue struct {
	mu       sync.Mutex
	partners map[string]*partnerWork
	// turns are the partners with waiting files and none in progress, in
	// the order they get their next turn.
	turns   []string
	pending map[workItem]bool // queued or in progress
	// wake has a token while a worker may find something to take; a worker
	// that takes a file passes the token on when more are ready.
	wake   chan struct{}
	closed bool
}

// partnerWork is one partner's waiting files.
type partnerWork struct {
	templates, lists []workItem
	busy             bool // a file of the partner is being ingested
}

func newWorkQueue() *workQueue {
	return &workQueue{partners: map[string]*partnerWork{}, pending: map[workItem]bool{}, wake: make(chan struct{}, 1)}
}

// push adds an item unless it is already queued or in progress.
func (q *workQueue) push(it workItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.pending[it] {
		return false
	}
	q.pending[it] = true
	pw := q.partners[it.partner]
	if pw == nil {
		pw = &partnerWork{}
		q.partners[it.partner] = pw
	}
	waiting := len(pw.templates)+len(pw.lists) > 0
	if isTemplateItem(it) {
		pw.templates = append(pw.templates, it)
	} else {
		pw.lists = append(pw.lists, it)
	}
	if !pw.busy && !waiting {
		q.turns = append(q.turns, it.partner)
		q.signal()
	}
	return true
}

// signal leaves a wake-up token unless one is already waiting.
func (q *workQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// busy reports whether the item is queued or in progress.
func (q *workQueue) busy(it workItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending[it]
}

// pop takes the next partner's oldest file (a template before any list);
// ok is false when no partner without a file in progress has one waiting.
// The partner has no further turn until done is called for the item.
func (q *workQueue) pop() (workItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.turns) == 0 {
		return workItem{}, false
	}
	name := q.turns[0]
	q.turns = q.turns[1:]
	pw := q.partners[name]
	var it workItem
	if len(pw.templates) > 0 {
		it, pw.templates = pw.templates[0], pw.templates[1:]
	} else {
		it, pw.lists = pw.lists[0], pw.lists[1:]
	}
	pw.busy = true
	if len(q.turns) > 0 {
		q.signal() // another worker may take the next partner's turn
	}
	return it, true
}

// next waits for an item to ingest; ok is false once ctx ends.
func (q *workQueue) next(ctx context.Context) (workItem, bool) {
	for {
		if ctx.Err() != nil {
			return workItem{}, false
		}
		if it, ok := q.pop(); ok {
			return it, true
		}
		select {
		case <-ctx.Done():
			return workItem{}, false
		case <-q.wake:
		}
	}
}

// done marks an item finished, so a later upload of the same name is taken,
// and gives its partner a turn at the back of the line when it has more
// files waiting.
func (q *workQueue) done(it workItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, it)
	pw := q.partners[it.partner]
	pw.busy = false
	if len(pw.templates)+len(pw.lists) > 0 {
		q.turns = append(q.turns, it.partner)
		q.signal()
	} else {
		delete(q.partners, it.partner)
	}
}

// requeueFront puts an item that was taken back at the head of its
// partner's line (a file paused for storage space): it stays pending, so
// nothing queues it twice meanwhile, and its partner has the next turn.
func (q *workQueue) requeueFront(it workItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pw := q.partners[it.partner]
	pw.busy = false
	if isTemplateItem(it) {
		pw.templates = append([]workItem{it}, pw.templates...)
	} else {
		pw.lists = append([]workItem{it}, pw.lists...)
	}
	q.turns = append([]string{it.partner}, q.turns...)
	q.signal()
}

func (q *workQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
}
