package ingest

import "sync"

// workItem is one complete file to ingest, relative to a partner's home.
type workItem struct {
	partner string
	rel     string
}

// workQueue is the FIFO of complete files. A file already waiting or being
// ingested is not added again, which is what keeps a file that both the
// embedded server and the watcher report from being read twice.
type workQueue struct {
	mu      sync.Mutex
	items   []workItem
	pending map[workItem]bool // queued or in progress
	signal  chan struct{}
	closed  bool
}

func newWorkQueue() *workQueue {
	return &workQueue{pending: map[workItem]bool{}, signal: make(chan struct{}, 1)}
}

// push adds an item unless it is already queued or in progress.
func (q *workQueue) push(it workItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.pending[it] {
		return false
	}
	q.pending[it] = true
	q.items = append(q.items, it)
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return true
}

// busy reports whether the item is queued or in progress.
func (q *workQueue) busy(it workItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending[it]
}

// pop takes the oldest item; ok is false when the queue is empty.
func (q *workQueue) pop() (workItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return workItem{}, false
	}
	it := q.items[0]
	q.items = q.items[1:]
	return it, true
}

// done marks an item finished, so a later upload of the same name is taken.
func (q *workQueue) done(it workItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, it)
}

func (q *workQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
}
