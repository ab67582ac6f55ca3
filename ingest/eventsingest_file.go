package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// isEventsItem reports whether the file is in the partner's events/.
func isEventsItem(it workItem) bool {
	return strings.HasPrefix(it.rel, config.EventsDir+"/")
}

// ingestEventsFile reads one file of events/ and accepts its events, all
// or nothing, as suppress/ files are read (ingestSuppressFile): a bad row
// (or, under on_bad_rows = "skip_rows", no good row) rejects the file with
// reports/<file>.errors.csv naming line and column; a good file's events
// are stored, with the runs they start, in the transaction that marks the
// file read, and reports/<file>.result.csv says how many were accepted,
// repeated (an id already accepted) and how many runs started. The file is
// held, refused as a duplicate and archived like a recipient file.
func (in *Ingester) ingestEventsFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	abs := filepath.Join(p.home, filepath.FromSlash(rel))
	src, err := os.Open(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return err
	}
	facts, err := inspectFile(src, nil)
	if err != nil {
		return err
	}
	last, err := in.st.LastFileNamed(ctx, p.cfg.Name, rel)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	stillHeld := err == nil && last.Status == store.FileHeld && last.SHA256 == facts.sha
	reason := holdReason(p, rel, how, facts)
	if reason == "" && how == arrivedUnknown && stillHeld {
		reason = last.Error
	}
	if reason != "" {
		if stillHeld && last.Error == reason {
			return nil
		}
		return in.holdFile(ctx, p, rel, facts, reason)
	}
	if err == nil && last.Status == store.FileHeld {
		if err := in.st.ReplaceHeldFiles(ctx, p.cfg.Name, rel); err != nil {
			return err
		}
	}
	upload := openUpload{abs: abs, info: fi}
	var fileErr *fileLevelError
	switch {
	case in.events == nil:
		fileErr = &fileLevelError{Msg: "this server does not take events; ask your administrator to configure a workflow"}
	case mk != nil && mk.problem != "":
		fileErr = &fileLevelError{Msg: mk.problem + "; no event was accepted: upload the marker again"}
	case mk != nil && mk.sha != "" && mk.sha != facts.sha:
		fileErr = &fileLevelError{Msg: fmt.Sprintf("the file's SHA-256 is %s but its marker says %s; no event was accepted. Upload the whole file again, then its marker", facts.sha, mk.sha)}
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
	ef := &eventsFile{fileJob: fileJob{in: in, p: p, rel: rel}, checker: eventChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region)}}
	if fileErr == nil {
		if err := ef.read(ctx, src); err != nil && !errors.As(err, &fileErr) {
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
			return err
		}
	}
	if fileErr == nil && mk != nil && mk.rows >= 0 && mk.rows != ef.rows {
		fileErr = &fileLevelError{Msg: fmt.Sprintf("the file has %d rows but its marker says %d; no event was accepted", ef.rows, mk.rows)}
	}
	errorsReport, resultReport := reportPath(p, rel, errorsSuffix), reportPath(p, rel, resultSuffix)
	if err := removeReport(resultReport); err != nil {
		return err
	}
	log := in.log.With("partner", p.cfg.Name, "file", rel)
	switch {
	case fileErr != nil:
		errs := []store.FileError{{Line: fileErr.Line, Error: fileErr.Msg}}
		if err := in.st.RejectFile(ctx, fileID, fileErr.Msg, ef.rows, errs); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, errs); err != nil {
			return err
		}
		log.Info("events file rejected", "reason", fileErr.Msg)
	case ef.bad > 0 && (p.cfg.OnBadRows != config.SkipRows || len(ef.events) == 0):
		summary := fmt.Sprintf("%d of %d rows have errors; no event was accepted. See reports/%s%s", ef.bad, ef.rows, filepath.Base(rel), errorsSuffix)
		if err := in.st.RejectFile(ctx, fileID, summary, ef.rows, ef.reportedErrors()); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, ef.reportedErrors()); err != nil {
			return err
		}
		log.Info("events file rejected", "rows", ef.rows, "bad_rows", ef.bad)
	default:
		res, err := in.events(ctx, fileID, ef.rows, ef.events)
		if err != nil {
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
			return err
		}
		accepted, repeated, started, cancelled := 0, 0, 0, 0
		for _, r := range res {
			if r.Duplicate {
				repeated++
			} else {
				accepted++
			}
			started += len(r.Started)
			cancelled += r.Cancelled
		}
		if ef.bad > 0 {
			err = writeErrorsReport(errorsReport, ef.reportedErrors())
		} else {
			err = removeReport(errorsReport)
		}
		if err != nil {
			return err
		}
		if err := writeAtomic(resultReport, func(w *bufio.Writer) error {
			cw := csv.NewWriter(w)
			cw.Write([]string{"rows", "accepted", "repeated", "runs_started", "runs_cancelled", "skipped_rows"})
			cw.Write([]string{strconv.Itoa(ef.rows), strconv.Itoa(accepted), strconv.Itoa(repeated), strconv.Itoa(started),
				strconv.Itoa(cancelled), strconv.Itoa(ef.bad)})
			cw.Flush()
			return cw.Error()
		}); err != nil {
			return err
		}
		log.Info("events accepted", "rows", ef.rows, "accepted", accepted, "repeated", repeated, "runs_started", started,
			"runs_cancelled", cancelled, "skipped", ef.bad)
	}
	return in.archiveUpload(ctx, p, upload, fileID, mk)
}

// eventsFile is the reading of one events/ file. It borrows fileJob's
// row-error bookkeeping.
type eventsFile struct {
	fileJob
	checker eventChecker
	events  []store.Event
}

// read reads the file: plain CSV (.csv or .txt) only.
func (ef *eventsFile) read(ctx context.Context, f *os.File) error {
	base := filepath.Base(ef.rel)
	if kindOf(base) != kindPlain {
		return &fileLevelError{Msg: fmt.Sprintf("%q was not read: files in events/ must end in .csv or .txt; save it as CSV and upload it again", base)}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read file: %w", err)
	}
	return ef.readCSV(ctx, f)
}

// readCSV reads one CSV stream of events: the columns event, email, phone,
// ref, key, occurred_at and id; every other column is a data field.
func (ef *eventsFile) readCSV(ctx context.Context, r io.Reader) error {
	cr, err := newCSVReader(r, ef.p.cfg.Encoding, ef.in.cfg.Ingest.MaxRowBytes)
	switch {
	case errors.Is(err, errEmptyFile):
		return &fileLevelError{Msg: "the file is empty; upload a CSV with a header line (event, email/phone/ref, optional key, occurred_at, id and data columns) and at least one row"}
	case err != nil:
		return csvFileError(err)
	}
	pos := map[string]int{}
	for i, n := range cr.names {
		if _, dup := pos[n]; dup {
			return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header names the column %q twice; keep one", n)}
		}
		pos[n] = i
	}
	if _, ok := pos[colEvent]; !ok {
		return &fileLevelError{Line: 1, Msg: "the header has no event column; name the column that says what happened (e.g. cart_abandoned)"}
	}
	_, hasEmail := pos[colEmail]
	_, hasPhone := pos[colPhone]
	_, hasRef := pos[colRef]
	if !hasEmail && !hasPhone && !hasRef {
		return &fileLevelError{Line: 1, Msg: "the header has no email, phone or ref column; name the column that says who did it"}
	}
	cell := func(fields []string, name string) string {
		if i, ok := pos[name]; ok && i < len(fields) {
			return fields[i]
		}
		return ""
	}
	rowsBefore := ef.rows
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		fields, line, err := cr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if ef.rows >= ef.p.cfg.MaxRows {
			return ef.tooManyRows()
		}
		ef.rows++
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			ef.rowError(line, "", "", quoteErrorMessage(pe))
			continue
		}
		if err != nil {
			return csvFileError(err)
		}
		if len(fields) != len(cr.names) {
			ef.rowError(line, "", "", fmt.Sprintf("the row has %d values but the header has %d columns; check for a missing or extra separator", len(fields), len(cr.names)))
			continue
		}
		if cr.checkUTF8 {
			bad := false
			for i, v := range fields {
				if !utf8.ValidString(v) {
					ef.rowError(line, cr.names[i], "", "the value is not valid UTF-8 text; save the file as UTF-8, or ask your administrator to set your encoding")
					bad = true
				}
			}
			if bad {
				continue
			}
		}
		var data map[string]string
		for i, name := range cr.names {
			switch name {
			case colEvent, colEmail, colPhone, colRef, colKey, colOccurredAt, colEventID:
				continue
			}
			if data == nil {
				data = make(map[string]string, len(cr.names))
			}
			data[name] = fields[i]
		}
		in := EventInput{ID: cell(fields, colEventID), Event: cell(fields, colEvent), Email: cell(fields, colEmail),
			Phone: cell(fields, colPhone), Ref: cell(fields, colRef), Key: cell(fields, colKey), OccurredAt: cell(fields, colOccurredAt), Data: data}
		e, ok := ef.checker.check(in, store.EventFromFile, func(column, value, msg string) { ef.rowError(line, column, value, msg) })
		if ok {
			ef.events = append(ef.events, e)
		}
	}
	if ef.rows == rowsBefore {
		return &fileLevelError{Msg: "the file has a header line but no rows, so no event was accepted"}
	}
	return nil
}
