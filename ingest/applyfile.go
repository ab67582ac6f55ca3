package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// appliedFile is a data file applied to the store whole, in one
// transaction, instead of queued as a job: a suppress/ file, a
// lists/<list>/ file. ingestAppliedFile holds, refuses as a duplicate,
// reports and archives it exactly like a recipient file.
type appliedFile interface {
	// job is the file's row bookkeeping (rows, bad rows, their errors).
	job() *fileJob
	// read reads and checks every row of f; a *fileLevelError rejects
	// the file, any other error is dropgate's own.
	read(ctx context.Context, f *os.File) error
	// applicable reports whether the good rows may be applied: no bad
	// row, or bad rows skipped as the partner's on_bad_rows allows.
	applicable() bool
	// apply commits the good rows and returns the result report's header
	// and its one line of counts.
	apply(ctx context.Context, fileID int64) (header, counts []string, err error)
	// abort undoes what read wrote (nothing is committed before apply).
	abort()
	// nothing ends the partner's message when nothing was applied
	// ("nothing was suppressed").
	nothing() string
}

// ingestAppliedFile reads one applied file and applies it, all or nothing:
// a bad row (or, under on_bad_rows = "skip_rows" where the file allows it,
// no good row) rejects the file with reports/<file>.errors.csv; an applied
// file gets reports/<file>.result.csv with its counts.
func (in *Ingester) ingestAppliedFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck, af appliedFile) error {
	tf, err := in.takeFile(ctx, p, rel, how)
	if tf == nil || err != nil {
		return err
	}
	defer tf.src.Close()
	ctx = in.claimFence(ctx, p, rel) // claims.go: applied only while the file is still this node's
	src, facts, upload := tf.src, tf.facts, tf.upload
	in.claimContent(ctx, p, rel, facts.sha) // the claim names the content read, as for recipient files
	var fileErr *fileLevelError
	if mk != nil && mk.problem != "" {
		fileErr = &fileLevelError{Msg: mk.problem + "; " + af.nothing() + ": upload the marker again"}
	} else if mk != nil && mk.sha != "" && mk.sha != facts.sha {
		fileErr = &fileLevelError{Msg: fmt.Sprintf("the file's SHA-256 is %s but its marker says %s; %s. Upload the whole file again, then its marker", facts.sha, mk.sha, af.nothing())}
	}
	dup, err := in.st.FileBySHA256(ctx, p.cfg.Name, facts.sha)
	switch {
	case err == nil && dup.Name == rel && dup.ArchivePath == "":
		return in.archiveUpload(ctx, p, upload, dup.ID, mk)
	case err == nil && fileErr == nil:
		fileErr = &fileLevelError{Msg: fmt.Sprintf("this file has the same content as %s, already applied, so it was not read again", dup.Name)}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("cannot check for a duplicate: %w", err)
	}
	fileID, err := in.st.CreateFile(ctx, store.File{Partner: p.cfg.Name, Name: rel, Size: facts.size, SHA256: facts.sha})
	if err != nil {
		return err
	}
	defer af.abort()
	fj := af.job()
	if fileErr == nil {
		if err := af.read(ctx, src); err != nil && !errors.As(err, &fileErr) {
			af.abort()
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
			return err
		}
	}
	if fileErr == nil && mk != nil && mk.rows >= 0 && mk.rows != fj.rows {
		fileErr = &fileLevelError{Msg: fmt.Sprintf("the file has %d rows but its marker says %d; %s", fj.rows, mk.rows, af.nothing())}
	}
	if err := in.stillClaimed(ctx, p, rel); err != nil { // claims.go: reports are the claim holder's
		return err
	}
	errorsReport, resultReport := reportPath(p, rel, errorsSuffix), reportPath(p, rel, resultSuffix)
	if err := removeReport(resultReport); err != nil {
		return err
	}
	log := in.log.With("partner", p.cfg.Name, "file", rel)
	switch {
	case fileErr != nil:
		af.abort()
		errs := []store.FileError{{Line: fileErr.Line, Error: fileErr.Msg}}
		if err := in.st.RejectFile(ctx, fileID, fileErr.Msg, fj.rows, errs); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, errs); err != nil {
			return err
		}
		log.Info("file rejected", "reason", fileErr.Msg)
	case !af.applicable():
		af.abort()
		summary := fmt.Sprintf("%d of %d rows have errors; %s. See reports/%s%s", fj.bad, fj.rows, af.nothing(), filepath.Base(rel), errorsSuffix)
		if err := in.st.RejectFile(ctx, fileID, summary, fj.rows, fj.reportedErrors()); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, fj.reportedErrors()); err != nil {
			return err
		}
		log.Info("file rejected", "rows", fj.rows, "bad_rows", fj.bad)
	default:
		if in.applying != nil {
			in.applying(rel)
		}
		header, counts, err := af.apply(ctx, fileID)
		if err != nil {
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
			return err
		}
		if fj.bad > 0 {
			err = writeErrorsReport(errorsReport, fj.reportedErrors())
		} else {
			err = removeReport(errorsReport)
		}
		if err != nil {
			return err
		}
		if err := writeAtomic(resultReport, func(w *bufio.Writer) error {
			cw := csv.NewWriter(w)
			cw.Write(header)
			cw.Write(counts)
			cw.Flush()
			return cw.Error()
		}); err != nil {
			return err
		}
		attrs := []any{}
		for i := range header {
			attrs = append(attrs, header[i], counts[i])
		}
		log.Info("file applied", attrs...)
	}
	return in.archiveUpload(ctx, p, upload, fileID, mk)
}

// skipsBadRows reports whether the partner's on_bad_rows lets a file's
// good rows apply when others are bad.
func (p *partner) skipsBadRows() bool {
	return p.cfg.OnBadRows == config.SkipRows
}

// takenFile is a drop that counts as complete, open for its one read.
type takenFile struct {
	src    *os.File
	facts  fileFacts
	upload openUpload
}

// takeFile opens a drop of sends/, suppress/, events/ or lists/ and
// applies the partner's completion rule: it returns nil, and no error,
// when the file is gone, or held (recorded as held, with its reason,
// unless it already was). A held file that is now whole is marked
// replaced. The caller closes src.
func (in *Ingester) takeFile(ctx context.Context, p *partner, rel string, how arrival) (*takenFile, error) {
	abs := filepath.Join(p.home, filepath.FromSlash(rel))
	src, err := os.Open(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tf, err := in.takeOpenFile(ctx, p, rel, how, abs, src)
	if tf == nil {
		src.Close()
	}
	return tf, err
}

func (in *Ingester) takeOpenFile(ctx context.Context, p *partner, rel string, how arrival, abs string, src *os.File) (*takenFile, error) {
	fi, err := src.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, err
	}
	facts, err := inspectFile(src, nil)
	if err != nil {
		return nil, err
	}
	last, err := in.st.LastFileNamed(ctx, p.cfg.Name, rel)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	stillHeld := err == nil && last.Status == store.FileHeld && last.SHA256 == facts.sha
	reason := holdReason(p, rel, how, facts)
	if reason == "" && how == arrivedUnknown && stillHeld {
		reason = last.Error
	}
	if reason != "" {
		if stillHeld && last.Error == reason {
			return nil, nil
		}
		return nil, in.holdFile(ctx, p, rel, facts, reason)
	}
	if err == nil && last.Status == store.FileHeld {
		if err := in.st.ReplaceHeldFiles(ctx, p.cfg.Name, rel); err != nil {
			return nil, err
		}
	}
	return &takenFile{src: src, facts: facts, upload: openUpload{abs: abs, info: fi}}, nil
}
