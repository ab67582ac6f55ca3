package ingest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// maxListedErrors bounds the errors kept for one file. Each is stored and
// reported; past the bound one last line says how many more rows were bad,
// so a million bad rows cannot fill memory.
const maxListedErrors = 100_000

// fileLevelError rejects a whole file with one report line. Line is 0 for
// the file as a whole (empty, duplicate, unknown template folder, wrong
// extension) and the line number for a problem at a place (header: 1).
type fileLevelError struct {
	Line int
	Msg  string
}

func (e *fileLevelError) Error() string { return e.Msg }

// fileJob is the ingest of one recipient file.
type fileJob struct {
	in  *Ingester
	p   *partner
	rel string
	w   *store.JobWriter

	folder    *messageTemplate // the template named by inbox/<template>/
	templates map[string]templateLookup
	phones    *phoneNormalizer
	buf       bytes.Buffer
	vars      map[string]string // the row being read's variables, reused
	entry     string            // zip entry being read, prefixed to its errors

	rows, good, bad int
	lastBad         int   // line of the last bad row, to count rows not errors
	expanded        int64 // bytes decompressed so far (.csv.gz, .zip)

	// An earlier queued upload of this name that the file extends: its
	// records up to line skipThrough were that job's and are skipped.
	extends      *store.File
	skipThrough  int
	skipped      int // records skipped as the earlier job's
	firstSkipped int // line of the first of them
	errs         []store.FileError
	unlisted     int
}

// templateLookup caches a template name's lookup for one file.
type templateLookup struct {
	t   *messageTemplate
	msg string // why the name cannot be used, when t is nil
}

// extendWindow is how far back an earlier upload of the same name may be
// for a new one that extends it to queue only its new rows.
const extendWindow = 24 * time.Hour

// ingestRecipientFile reads one file from inbox/, queues its good rows as
// one job and reports on it. The partner learns about every problem with the
// file through reports/; only dropgate's own failures are returned. how is
// the way the file arrived, mk its marker (complete = marker) or nil.
//
// A file that does not count as complete under the partner's rule is held:
// recorded as "held", reported, and left in the inbox, where an upload of
// the same name replaces it and is taken. A file whose first bytes are an
// earlier queued upload of the same name (a resumed transfer) queues only
// the rows that upload did not have.
func (in *Ingester) ingestRecipientFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) (err error) {
	abs := filepath.Join(p.home, filepath.FromSlash(rel))
	// One open file is hashed, read and archived: an upload of the same
	// name that replaces it meanwhile is a new file, taken after this one.
	src, err := os.Open(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil // already taken (double event) or removed by the partner
	}
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	var earlier []store.File
	kind := kindOf(filepath.Base(rel))
	if kind == kindPlain && fi.Size() > 0 {
		if earlier, err = in.st.QueuedFilesNamed(ctx, p.cfg.Name, rel, time.Now().Add(-extendWindow), fi.Size(), 3); err != nil {
			return err
		}
	}
	last, err := in.st.LastFileNamed(ctx, p.cfg.Name, rel)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	lastHeld := err == nil && last.Status == store.FileHeld
	// One read (onePass): the file is hashed while it is read for ingest,
	// and the duplicate and marker checks come at the end of that read,
	// before anything is committed. What must be decided before reading
	// needs the hash first, from a pass of its own: a file that may extend
	// an earlier upload (the prefix hashes decide which rows to skip), a
	// file held before (is it the same one?), a zip (read by random
	// access), a bad marker (nothing is read).
	onePass := len(earlier) == 0 && !lastHeld && kind != kindZip && (mk == nil || mk.problem == "")
	var facts fileFacts
	if onePass {
		facts, err = endFacts(src, fi.Size())
	} else {
		facts, err = inspectFile(src, prefixCuts(earlier))
	}
	if err != nil {
		return err
	}
	reason := holdReason(p, rel, how, facts)
	if reason != "" && facts.partial {
		// Held files are not read for ingest: inspect this one whole, for
		// the held record's hash and the final word on "cut".
		if facts, err = inspectFile(src, nil); err != nil {
			return err
		}
		onePass = false
		reason = holdReason(p, rel, how, facts)
	}
	upload := openUpload{abs: abs, info: fi}
	sum, size := facts.sha, facts.size
	log := in.log.With("partner", p.cfg.Name, "file", rel)

	stillHeld := lastHeld && last.SHA256 == sum
	if reason == "" && how == arrivedUnknown && stillHeld {
		reason = last.Error // found again by a scan: nothing new about it
	}
	if reason != "" {
		if stillHeld && last.Error == reason {
			return nil // held and reported already
		}
		return in.holdFile(ctx, p, rel, facts, reason)
	}
	if lastHeld {
		if err := in.st.ReplaceHeldFiles(ctx, p.cfg.Name, rel); err != nil {
			return err
		}
	}

	var fileErr *fileLevelError
	if !onePass {
		fileErr = markerMismatch(mk, rel, sum)
		dup, done, err := in.duplicateOf(ctx, p, rel, sum)
		if err != nil {
			return err
		}
		if done != nil {
			// Queued before a crash or shutdown but never archived: finish that.
			return in.archiveUpload(ctx, p, upload, done.ID, mk)
		}
		if fileErr == nil {
			fileErr = dup
		}
	}
	fileID, err := in.st.CreateFile(ctx, store.File{Partner: p.cfg.Name, Name: rel, Size: size, SHA256: sum})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Neither queued nor rejected: a record left "received" would
			// show in the API until a restart. The file stays in the inbox.
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
		}
	}()
	fj := &fileJob{in: in, p: p, rel: rel, templates: map[string]templateLookup{}, phones: newPhoneNormalizer(p.cfg.Region)}
	fj.extendsEarlier(earlier, facts)
	if fileErr == nil {
		if fj.w, err = in.st.BeginFileJob(ctx, p.cfg.Name, fileID, rel, in.cfg.Ingest.BatchSize); err != nil {
			return err
		}
		in.holdClaim(fj.w, p, rel) // claims.go: queued only while the file is still this node's
		// Abort does nothing once the job is committed; on every other way
		// out it removes the job, stops its flusher and restores the WAL
		// checkpoints, so no "ingesting" job stays behind until a restart.
		defer fj.w.Abort(context.WithoutCancel(ctx))
		readCtx, stopWatch := in.watchSpace(ctx) // diskpause.go: stops early when storage runs low
		if in.ingesting != nil {
			err = in.ingesting(ctx, workItem{partner: p.cfg.Name, rel: rel})
		}
		var hr *hashingReader
		if err == nil {
			if onePass {
				hr = newHashingReader(src)
			}
			err = fj.read(readCtx, src, hr)
		}
		if hr != nil && ctx.Err() == nil && (err == nil || errors.As(err, new(*fileLevelError))) {
			// The read may stop early (a file-level error): hash the rest.
			hashed, n, herr := hr.finish()
			if herr != nil {
				stopWatch()
				return herr
			}
			sum, size = hashed, n
			if err := in.st.SetFileContent(ctx, fileID, size, sum); err != nil {
				stopWatch()
				return err
			}
			bad := markerMismatch(mk, rel, sum)
			dupErr, done, derr := in.duplicateOf(ctx, p, rel, sum)
			if derr != nil {
				stopWatch()
				return derr
			}
			if done != nil {
				stopWatch()
				fj.w.Abort(context.WithoutCancel(ctx))
				in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
				return in.archiveUpload(ctx, p, upload, done.ID, mk)
			}
			if bad == nil {
				bad = dupErr
			}
			if bad != nil {
				fileErr, err = bad, nil
			}
		}
		stopWatch()
		if ctx.Err() != nil {
			// Stopping: undo everything (deferred), leave the file for the
			// next start.
			return ctx.Err()
		}
		if err != nil && !errors.As(err, &fileErr) {
			if err := storageFailure(readCtx, err); err != nil {
				return err // out of space: the file waits, it is not rejected (diskpause.go)
			}
			log.Error("cannot read file", "err", err)
			fileErr = &fileLevelError{Msg: "dropgate could not read this file because of an internal problem; it was not queued. Upload it again, and tell your administrator if this repeats"}
		}
		if fileErr == nil && err == nil {
			fileErr = fj.checkCounts(mk)
		}
	}
	if err := in.stillClaimed(ctx, p, rel); err != nil { // claims.go: reports are the claim holder's
		return err
	}
	errorsReport := reportPath(p, rel, errorsSuffix)
	if err := removeReport(reportPath(p, rel, resultSuffix)); err != nil {
		return err
	}
	switch {
	case fileErr != nil:
		if fj.w != nil {
			fj.w.Abort(ctx)
		}
		errs := []store.FileError{{Line: fileErr.Line, Error: fileErr.Msg}}
		if err := in.st.RejectFile(in.claimFence(ctx, p, rel), fileID, fileErr.Msg, fj.rows, errs); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, errs); err != nil {
			return err
		}
		log.Info("file rejected", "reason", fileErr.Msg)
	case fj.bad > 0 && (p.cfg.OnBadRows != config.SkipRows || fj.good == 0):
		fj.w.Abort(ctx)
		errs := fj.withExtensionNote(fj.reportedErrors(), facts)
		summary := fmt.Sprintf("%d of %d rows have errors; nothing was queued. See reports/%s%s", fj.bad, fj.rows, filepath.Base(rel), errorsSuffix)
		if err := in.st.RejectFile(in.claimFence(ctx, p, rel), fileID, summary, fj.rows, errs); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, errs); err != nil {
			return err
		}
		log.Info("file rejected", "rows", fj.rows, "bad_rows", fj.bad)
	default:
		errs := fj.withExtensionNote(fj.reportedErrors(), facts)
		if err := fj.recordTemplates(ctx); err != nil { // jobtemplates.go
			return err
		}
		if err := fj.w.Commit(ctx, fj.rows, errs); err != nil {
			return err
		}
		if len(errs) > 0 {
			err = writeErrorsReport(errorsReport, errs)
		} else {
			err = removeReport(errorsReport)
		}
		if err != nil {
			return err
		}
		log.Info("file queued", "job", fj.w.JobID(), "rows", fj.rows, "queued", fj.good, "skipped", fj.bad, "earlier_rows", fj.skipped)
	}
	return in.archiveUpload(ctx, p, upload, fileID, mk)
}

// markerMismatch rejects a file whose marker (complete = marker) is bad or
// names another SHA-256; nil when there is none or it agrees.
func markerMismatch(mk *markerCheck, rel, sum string) *fileLevelError {
	switch {
	case mk != nil && mk.problem != "":
		return &fileLevelError{Msg: mk.problem + "; the file was not queued: upload the marker again"}
	case mk != nil && mk.sha != "" && mk.sha != sum:
		return &fileLevelError{Msg: fmt.Sprintf("the file's SHA-256 is %s but its marker %s%s says %s: the file is incomplete or not the one the marker was made for; nothing was queued. Upload the whole file again, then its marker",
			sum, filepath.Base(rel), config.MarkerSuffix, mk.sha)}
	}
	return nil
}

// duplicateOf checks for a queued file of the same content. It returns
// the rejection of a duplicate, or, for this very file queued before a
// crash or shutdown but never archived, that file's record (done).
func (in *Ingester) duplicateOf(ctx context.Context, p *partner, rel, sum string) (*fileLevelError, *store.File, error) {
	in.claimContent(ctx, p, rel, sum) // claims.go: the claim holds what is being read
	dup, err := in.st.FileBySHA256(ctx, p.cfg.Name, sum)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("cannot check for a duplicate: %w", err)
	case dup.Name == rel && dup.ArchivePath == "":
		return nil, &dup, nil
	}
	return &fileLevelError{Msg: fmt.Sprintf("this file has the same content as %s, already queued as job %d, so it was not queued again; "+
		"to send the same list again, change the file (for example add a ref column)", dup.Name, dup.JobID)}, nil, nil
}

// openUpload is the file being ingested: its path, and what was opened
// there when it was taken.
type openUpload struct {
	abs  string
	info os.FileInfo
}

// archiveUpload archives a file and, when it came with one, its marker.
// A file replaced by a new upload while it was read is not archived (the
// new one stays, and is taken next); nor is its marker.
func (in *Ingester) archiveUpload(ctx context.Context, p *partner, u openUpload, fileID int64, mk *markerCheck) error {
	dst, err := in.archive(p, u.abs, u.info)
	if errors.Is(err, errReplaced) {
		in.log.Info("file replaced by a new upload while it was read; the new upload is taken next", "partner", p.cfg.Name, "file", u.abs)
		return nil
	}
	if err != nil {
		return err
	}
	if err := in.st.SetFileArchive(ctx, fileID, dst); err != nil {
		return err
	}
	if mk == nil {
		return nil
	}
	if _, err := in.archive(p, mk.path, nil); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// reportedErrors returns the errors with, past the bound, a closing line
// saying how many more rows were bad.
func (fj *fileJob) reportedErrors() []store.FileError {
	if fj.unlisted == 0 {
		return fj.errs
	}
	return append(fj.errs, store.FileError{Line: 0, Error: fmt.Sprintf("%d more errors are not listed; fix the rows above and upload the file again to see them", fj.unlisted)})
}

// read streams every CSV in the file into the job writer.
//
// hr, when not nil, reads f from its start and hashes what it reads: the
// plain and gzip reads go through it (one read per file); a zip is read by
// random access and never gets one.
func (fj *fileJob) read(ctx context.Context, f *os.File, hr *hashingReader) error {
	if parts := strings.Split(fj.rel, "/"); len(parts) == 3 {
		t, err := fj.in.template(ctx, fj.p, parts[1])
		if errors.Is(err, store.ErrNotFound) {
			return &fileLevelError{Msg: fmt.Sprintf("there is no template named %q, which the folder inbox/%s/ names; upload templates/%s.tmpl first, then upload this file again", parts[1], parts[1], parts[1])}
		}
		if err != nil {
			return &fileLevelError{Msg: fmt.Sprintf("the template %q, which the folder inbox/%s/ names, cannot be used: %v", parts[1], parts[1], err)}
		}
		fj.folder = t
	}
	base := filepath.Base(fj.rel)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read file: %w", err)
	}
	var r io.Reader = f
	if hr != nil {
		r = hr
	}
	switch kindOf(base) {
	case kindPlain:
		return fj.readCSV(ctx, r)
	case kindGzip:
		zr, err := gzip.NewReader(r)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &fileLevelError{Msg: gzipCutMessage}
		}
		if err != nil {
			return &fileLevelError{Msg: "the file ends in .gz but is not gzip data; compress it with gzip, or upload the plain .csv"}
		}
		defer zr.Close()
		err = fj.readCSV(ctx, fj.bounded(zr))
		var fe *fileLevelError
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &fileLevelError{Msg: gzipCutMessage}
		}
		if err != nil && !errors.As(err, &fe) && ctx.Err() == nil && !store.IsDiskFull(err) {
			return &fileLevelError{Msg: fmt.Sprintf("the gzip data is damaged (%v); compress the file again and upload it", err)}
		}
		return err
	case kindZip:
		return fj.readZip(ctx, f)
	}
	return &fileLevelError{Msg: fmt.Sprintf("%q was not read: files in inbox/ must end in .csv, .txt, .csv.gz or .zip; save it as CSV and upload it again", base)}
}

// readZip reads each CSV (.csv or .txt) inside a zip file, in the archive's
// order, into the same job; their errors go to the one report, each
// prefixed with the entry's name.
func (fj *fileJob) readZip(ctx context.Context, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return &fileLevelError{Msg: "the file ends in .zip but is not a readable zip archive; create it again and upload it"}
	}
	read := 0
	for _, zf := range zr.File {
		name := zf.Name
		if zf.FileInfo().IsDir() || config.IsTempName(name) || strings.HasPrefix(name, "__MACOSX/") || kindOf(name) != kindPlain {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return &fileLevelError{Msg: fmt.Sprintf("%s inside the zip cannot be opened (%v); create the zip again and upload it", name, err)}
		}
		fj.entry = name
		err = fj.readCSV(ctx, fj.bounded(rc))
		rc.Close()
		if err != nil {
			var fe *fileLevelError
			if errors.As(err, &fe) {
				fe.Msg = name + ": " + fe.Msg
				return fe
			}
			if ctx.Err() == nil && !store.IsDiskFull(err) {
				return &fileLevelError{Msg: fmt.Sprintf("%s inside the zip is damaged (%v); create the zip again and upload it", name, err)}
			}
			return err
		}
		read++
	}
	if read == 0 {
		return &fileLevelError{Msg: "the zip holds no .csv or .txt file; put the recipient CSVs in it and upload it again"}
	}
	return nil
}

// tooManyRows rejects a file with more rows than the partner's max_rows.
func (fj *fileJob) tooManyRows() error {
	max := fj.p.cfg.MaxRows
	return &fileLevelError{Msg: fmt.Sprintf("the file has more than %d rows, the most one file may have, so nothing was queued; "+
		"split it into files of at most %d rows and upload them (or ask your administrator to raise max_rows)", max, max)}
}

// expandedTooLargeError rejects a compressed file whose content grows past
// the partner's max_expanded_bytes.
type expandedTooLargeError struct{ Limit int64 }

func (e *expandedTooLargeError) Error() string {
	return fmt.Sprintf("the file expands to more than %d bytes when decompressed, the most one file may hold, so nothing was queued; "+
		"split it into smaller files and upload them (or ask your administrator to raise max_expanded_bytes)", e.Limit)
}

// bounded counts what r decompresses against the partner's
// max_expanded_bytes, every entry of a zip together: a small archive must
// not be able to make dropgate read without end.
func (fj *fileJob) bounded(r io.Reader) io.Reader {
	return &expandLimiter{r: r, fj: fj}
}

// expandLimiter is the reader bounded returns.
type expandLimiter struct {
	r  io.Reader
	fj *fileJob
}

func (l *expandLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.fj.expanded += int64(n)
	if limit := l.fj.p.cfg.MaxExpandedBytes; limit > 0 && l.fj.expanded > limit {
		return n, &expandedTooLargeError{Limit: limit}
	}
	return n, err
}
