package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dropgate/dropgate/store"
)

// maxAttempts is how many times an upload is read and not finished
// (dropgate failed inside, or died while reading it; a stop on purpose or a
// pause for storage space does not count) before it is quarantined
// instead of read again. Once can be bad luck (a restart, a
// full disk); twice in a row, the upload itself is the likely cause, and
// reading it at every start would make every start fail the same way.
const maxAttempts = 2

// beginAttempt records that it is about to process an item, and reports
// whether to go on: false when the item was quarantined instead (or gone).
// The record stays until endAttempt; found at the next start, it counts
// the attempt as one that did not finish.
func (in *Ingester) beginAttempt(ctx context.Context, p *partner, rel string, log *slog.Logger) bool {
	fi, err := os.Stat(filepath.Join(p.home, filepath.FromSlash(rel)))
	if err != nil {
		return true // gone or unreadable: the ingest says so
	}
	a := store.IngestAttempt{Partner: p.cfg.Name, Name: rel, Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	prev, err := in.st.IngestAttemptFor(ctx, p.cfg.Name, rel)
	switch {
	case err == nil && prev.Size == a.Size && prev.MTime == a.MTime:
		if prev.Attempts >= maxAttempts {
			if err := in.quarantine(ctx, p, rel, prev, log); err != nil && ctx.Err() == nil {
				log.Error("cannot quarantine file", "err", err)
			}
			return false
		}
		a.Attempts, a.LastError = prev.Attempts, prev.LastError
	case err != nil && !errors.Is(err, store.ErrNotFound):
		log.Error("cannot read the file's earlier attempts", "err", err)
	}
	a.Attempts++
	if err := in.st.StartIngestAttempt(ctx, a); err != nil && ctx.Err() == nil {
		log.Error("cannot record the attempt", "err", err)
	}
	return true
}

// endAttempt closes the record of an attempt: removed when the processing
// ended (whatever it decided about the file), kept when dropgate failed
// (err), taken back when it is stopping (ctx ended). A failure that makes the attempts
// maxAttempts quarantines the item at once.
func (in *Ingester) endAttempt(ctx context.Context, p *partner, rel string, err error, log *slog.Logger) {
	if ctx.Err() != nil {
		// Stopped on purpose mid-way: that says nothing about the upload,
		// so the attempt is taken back. Only a death (kill -9, out of
		// memory) or a failure inside dropgate leaves it counted.
		in.undoAttempt(ctx, p, rel, log)
		return
	}
	if err == nil {
		if err := in.st.EndIngestAttempt(ctx, p.cfg.Name, rel); err != nil {
			log.Error("cannot clear the attempt", "err", err)
		}
		return
	}
	if ferr := in.st.FailIngestAttempt(ctx, p.cfg.Name, rel, err.Error()); ferr != nil {
		log.Error("cannot record the failed attempt", "err", ferr)
		return
	}
	a, aerr := in.st.IngestAttemptFor(ctx, p.cfg.Name, rel)
	if aerr != nil || a.Attempts < maxAttempts {
		return
	}
	if _, serr := os.Stat(filepath.Join(p.home, filepath.FromSlash(rel))); serr != nil {
		in.st.EndIngestAttempt(ctx, p.cfg.Name, rel) // nothing left to quarantine
		return
	}
	if qerr := in.quarantine(ctx, p, rel, a, log); qerr != nil {
		log.Error("cannot quarantine file", "err", qerr)
	}
}

// undoAttempt takes back the attempt on record: the processing was
// stopped for a reason that says nothing about the upload.
func (in *Ingester) undoAttempt(ctx context.Context, p *partner, rel string, log *slog.Logger) {
	if err := in.st.UndoIngestAttempt(context.WithoutCancel(ctx), p.cfg.Name, rel); err != nil {
		log.Error("cannot take back the ingest attempt", "err", err)
	}
}

// quarantine takes an upload out of the partner's home for good: moved to
// the archive first (so that, whatever fails next, it is never read
// again), then recorded as a quarantined file (GET
// /api/v1/files?status=quarantined), reported to the partner, and its
// attempt record cleared.
func (in *Ingester) quarantine(ctx context.Context, p *partner, rel string, a store.IngestAttempt, log *slog.Logger) error {
	abs := filepath.Join(p.home, filepath.FromSlash(rel))
	f, err := os.Open(abs)
	if errors.Is(err, os.ErrNotExist) {
		return in.st.EndIngestAttempt(ctx, p.cfg.Name, rel)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	facts, err := inspectFile(f, nil)
	if err != nil {
		return err
	}
	sum, size := facts.sha, facts.size
	dst, err := in.archive(p, abs, info)
	if err != nil {
		return err
	}
	what := "dropgate stopped or failed while reading it"
	if a.LastError != "" {
		what = "dropgate failed while reading it (" + a.LastError + ")"
	}
	folder := strings.SplitN(rel, "/", 2)[0] + "/"
	reason := fmt.Sprintf("this file was not processed: %s %d times, so it will not be read again automatically, and it was moved out of %s. "+
		"Check it for what is unusual (a template with large loops, a very large file), fix it, and upload it again; tell your administrator if this repeats",
		what, a.Attempts, folder)
	if _, err := in.st.QuarantineFile(ctx, store.File{Partner: p.cfg.Name, Name: rel, Size: size, SHA256: sum, ArchivePath: dst}, reason); err != nil {
		return err
	}
	log.Warn("file quarantined: it was not processed twice and will not be read again", "attempts", a.Attempts, "last_error", a.LastError, "archive", dst)
	if isTemplateItem(workItem{partner: p.cfg.Name, rel: rel}) {
		err = writeAtomic(reportPath(p, rel, templateErrorsSuffix), func(w *bufio.Writer) error {
			fmt.Fprintf(w, "%s: %s.\n", rel, reason)
			return nil
		})
	} else {
		err = writeErrorsReport(reportPath(p, rel, errorsSuffix), []store.FileError{{Line: 0, Error: reason}})
	}
	if err != nil {
		// The file is out and recorded; the API says what the report would.
		log.Error("cannot write the quarantine report", "err", err)
	}
	return in.st.EndIngestAttempt(ctx, p.cfg.Name, rel)
}
