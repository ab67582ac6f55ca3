package ingest

import (
	"context"
)

// process ingests one file; problems with the file go to the partner's
// reports, problems of dropgate itself to the log.
func (in *Ingester) process(ctx context.Context, it workItem) {
	p := in.partners[it.partner]
	if p == nil {
		return
	}
	log := in.log.With("partner", it.partner, "file", it.rel)
	var err error
	if isTemplateItem(it) {
		err = in.ingestTemplate(ctx, p, it.rel)
	} else {
		err = in.ingestRecipientFile(ctx, p, it.rel)
	}
	if err != nil && ctx.Err() == nil {
		log.Error("cannot ingest file", "err", err)
	}
}
