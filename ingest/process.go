package ingest

import (
	"context"
)

// processLoop ingests queued files one at a time until ctx ends. One at a
// time keeps the duplicate check (same content already queued) free of races
// and leaves the second core to the store's insert goroutine.
func (in *Ingester) processLoop(ctx context.Context) {
	for {
		for {
			if ctx.Err() != nil {
				return
			}
			it, ok := in.queue.pop()
			if !ok {
				break
			}
			in.process(ctx, it)
			in.queue.done(it)
		}
		select {
		case <-ctx.Done():
			return
		case <-in.queue.signal:
		}
	}
}

// process ingests one file; problems with the file go to the partner's
// reports, problems of dropgate itself to the log.
func (in *Ingester) process(ctx context.Context, it workItem) {
	p := in.partners[it.partner]
	if p == nil {
		return
	}
	log := in.log.With("partner", it.partner, "file", it.rel)
	// Quarantine (quarantine.go): an upload not finished twice is not read again.
	if !in.beginAttempt(ctx, p, it.rel, log) {
		return
	}
	var err error
	if isTemplateItem(it) {
		err = in.ingestTemplate(ctx, p, it.rel)
	} else {
		err = in.ingestRecipientFile(ctx, p, it.rel)
	}
	in.endAttempt(ctx, p, it.rel, err, log)
	if err != nil && ctx.Err() == nil {
		log.Error("cannot ingest file", "err", err)
	}
}
