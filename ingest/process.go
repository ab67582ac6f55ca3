package ingest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// process ingests one file; problems with the file go to the partner's
// reports, problems of dropgate itself to the log. It reports whether the
// file was held for storage space: it is then read again later.
func (in *Ingester) process(ctx context.Context, it workItem) (held bool) {
	how := in.takeArrival(it)
	p := in.partners[it.partner]
	if p == nil {
		return false
	}
	log := in.log.With("partner", it.partner, "file", it.rel)
	// Nodes sharing the homes read each file once (claims.go).
	release, ok := in.claim(ctx, p, it, log)
	if !ok {
		return false
	}
	defer release()
	// Quarantine (quarantine.go): an upload not finished twice is not read again.
	if !in.beginAttempt(ctx, p, it.rel, log) {
		return
	}
	var err error
	if isTemplateItem(it) {
		err = in.ingestTemplate(ctx, p, it.rel)
	} else {
		err = in.ingestUpload(ctx, p, it.rel, how)
	}
	if errors.Is(err, store.ErrClaimLost) {
		// Another node took the file over while this one stalled: its
		// ingest wins, and this attempt says nothing about the file.
		log.Warn("file taken over by another node while this one read it; nothing was queued here", "err", err)
		in.undoAttempt(ctx, p, it.rel, log)
		return false
	}
	if ctx.Err() == nil && in.pauseFile(ctx, p, it, err) { // diskpause.go
		in.undoAttempt(ctx, p, it.rel, log) // waiting for space says nothing about the file
		return true
	}
	in.endAttempt(ctx, p, it.rel, err, log)
	if err != nil && ctx.Err() == nil {
		log.Error("cannot ingest file", "err", err)
	}
	if ctx.Err() == nil {
		in.fileTaken(p, it) // diskpause.go
	}
	return false
}

// ingestUpload ingests a file of inbox/ or suppress/ once it counts as complete under
// the partner's rule. With complete = marker, a file waits for
// <name>.done and a marker for its file; whichever comes second takes
// both. The other rules are applied while the file is read.
func (in *Ingester) ingestUpload(ctx context.Context, p *partner, rel string, how arrival) error {
	p.ingesting.Lock()
	defer p.ingesting.Unlock()
	if p.cfg.Complete != config.CompleteMarker {
		return in.ingestDataFile(ctx, p, rel, how, nil)
	}
	data := strings.TrimSuffix(rel, config.MarkerSuffix)
	if !isMarker(rel) {
		data = rel
	}
	markerAbs := filepath.Join(p.home, filepath.FromSlash(data+config.MarkerSuffix))
	if _, err := os.Stat(markerAbs); err != nil {
		in.log.Debug("file waits for its marker", "partner", p.cfg.Name, "file", data)
		return nil
	}
	if fi, err := os.Stat(filepath.Join(p.home, filepath.FromSlash(data))); err != nil || !fi.Mode().IsRegular() || config.IsTempName(data) {
		in.log.Debug("marker waits for its file", "partner", p.cfg.Name, "file", data)
		return nil
	}
	mk, problem, err := readMarker(markerAbs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return in.ingestDataFile(ctx, p, data, how, &markerCheck{marker: mk, problem: problem})
}

// markerCheck is a marker read for its file, with what is wrong with the
// marker itself ("" when nothing).
type markerCheck struct {
	marker
	problem string
}
