package ingest

import (
	"context"
)

// processLoop ingests queued files one at a time until ctx ends. One at a
// time keeps the duplicate check (same content already queued) free of races
// and leaves the second core to the store's insert goroutine.
func (in *Ingester) processLoop(ctx context.Context) {
	for {
		paused := false
		for {
			if ctx.Err() != nil {
				return
			}
			if paused = in.pausedForSpace(ctx); paused { // diskpause.go: files wait
				break
			}
			it, ok := in.queue.pop()
			if !ok {
				break
			}
			if in.process(ctx, it) {
				in.queue.requeueFront(it)
				continue
			}
			in.queue.done(it)
		}
		select {
		case <-ctx.Done():
			return
		case <-in.queue.signal:
		case <-in.spaceWait(paused):
		}
	}
}

// process ingests one file; problems with the file go to the partner's
// reports, problems of dropgate itself to the log. It reports whether the
// file was held for storage space: it is then read again later.
func (in *Ingester) process(ctx context.Context, it workItem) (held bool) {
	p := in.partners[it.partner]
	if p == nil {
		return false
	}
	log := in.log.With("partner", it.partner, "file", it.rel)
	var err error
	if isTemplateItem(it) {
		err = in.ingestTemplate(ctx, p, it.rel)
	} else {
		err = in.ingestRecipientFile(ctx, p, it.rel)
	}
	if ctx.Err() == nil && in.pauseFile(ctx, p, it, err) { // diskpause.go
		return true
	}
	if err != nil && ctx.Err() == nil {
		log.Error("cannot ingest file", "err", err)
	}
	if ctx.Err() == nil {
		in.fileTaken(p, it) // diskpause.go
	}
	return false
}
