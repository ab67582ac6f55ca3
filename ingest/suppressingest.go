package ingest

import (
	"archive/zip"
	"bufio"
	"compress/gzip"
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

// Suppression files (suppress/*.csv) and API entries: recipients a partner
// must never message again. They are checked and normalised exactly like
// recipient rows (phones to E.164 with the partner's region), with email
// addresses lower-cased, and the sender asks the store before each message
// (SuppressionKey).

// colReason is a suppression file's optional column saying why (email,
// phone and channel are the recipient files' columns).
const colReason = "reason"

// SuppressEntry is one suppression as given in a file row or an API request.
type SuppressEntry struct {
	Email, Phone, Channel, Reason string
}

// SuppressionKey is the form a message's recipient is looked up in the
// suppression list: email addresses are stored lower-cased (phones are
// already E.164 on both sides).
func SuppressionKey(recipient string) string {
	for i := 0; i < len(recipient); i++ {
		if c := recipient[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(recipient)
		}
	}
	return recipient
}

// suppressChecker checks entries of one partner.
type suppressChecker struct {
	p      *partner
	phones *phoneNormalizer
}

// check turns one entry into its suppressions, or problems (column, value,
// message) for the partner.
func (sc *suppressChecker) check(e SuppressEntry, source string, bad func(column, value, msg string)) []store.Suppression {
	email, phone, channel := strings.TrimSpace(e.Email), strings.TrimSpace(e.Phone), strings.TrimSpace(e.Channel)
	var want string // the recipient field the channel uses, "" for any
	if channel != "" {
		var ch *config.Channel
		for i := range sc.p.channels {
			if sc.p.channels[i].Name == channel {
				ch = &sc.p.channels[i]
			}
		}
		if ch == nil {
			bad(colChannel, e.Channel, fmt.Sprintf("%q is not one of your channels (%s); leave channel empty to suppress on every channel", channel, strings.Join(sc.p.cfg.Channels, ", ")))
			return nil
		}
		want = ch.RecipientField()
		if (want == colEmail && email == "") || (want == colPhone && phone == "") {
			bad(want, "", fmt.Sprintf("channel %q sends to the %s column, which is empty in this row; give the %s, or leave channel empty", channel, want, want))
			return nil
		}
	}
	if email == "" && phone == "" {
		bad(colEmail, "", "the row has neither email nor phone; give the address or number never to message again")
		return nil
	}
	var out []store.Suppression
	add := func(r string) {
		out = append(out, store.Suppression{Partner: sc.p.cfg.Name, Channel: channel, Recipient: r, Reason: strings.TrimSpace(e.Reason), Source: source})
	}
	ok := true
	if email != "" && want != colPhone {
		if addr, msg := checkEmail(email); msg != "" {
			bad(colEmail, e.Email, msg)
			ok = false
		} else {
			add(strings.ToLower(addr))
		}
	}
	if phone != "" && want != colEmail {
		if num, msg := sc.phones.normalize(phone); msg != "" {
			bad(colPhone, e.Phone, msg)
			ok = false
		} else {
			add(num)
		}
	}
	if !ok {
		return nil
	}
	return out
}

// CheckSuppressions checks API suppression entries of a partner as rows of
// a suppress/ file are checked. It returns the suppressions to store, or
// every problem (Field "suppressions[i].email"); nothing is stored when one
// entry is bad.
func (in *Ingester) CheckSuppressions(partnerName string, entries []SuppressEntry) ([]store.Suppression, []Problem, error) {
	p := in.partners[partnerName]
	if p == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	sc := &suppressChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region)}
	var out []store.Suppression
	var problems []Problem
	for i, e := range entries {
		out = append(out, sc.check(e, "api", func(column, value, msg string) {
			problems = append(problems, Problem{Field: fmt.Sprintf("suppressions[%d].%s", i, column), Value: value, Message: msg})
		})...)
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	return out, nil, nil
}

// isSuppressItem reports whether the file is in the partner's suppress/.
func isSuppressItem(it workItem) bool {
	return strings.HasPrefix(it.rel, config.SuppressDir+"/")
}

// ingestSuppressFile reads one file of suppress/ and stores its
// suppressions, all or nothing: a bad row (or, under on_bad_rows = "skip",
// no good row) rejects the file with reports/<file>.errors.csv; a good file
// gets reports/<file>.result.csv with how many were added and how many were
// already stored. It is held, refused as a duplicate and archived like a
// recipient file.
func (in *Ingester) ingestSuppressFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
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
	if mk != nil && mk.problem != "" {
		fileErr = &fileLevelError{Msg: mk.problem + "; nothing was suppressed: upload the marker again"}
	} else if mk != nil && mk.sha != "" && mk.sha != facts.sha {
		fileErr = &fileLevelError{Msg: fmt.Sprintf("the file's SHA-256 is %s but its marker says %s; nothing was suppressed. Upload the whole file again, then its marker", facts.sha, mk.sha)}
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
	sf := &suppressFile{fileJob: fileJob{in: in, p: p, rel: rel}, checker: suppressChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region)}}
	if fileErr == nil {
		if err := sf.read(ctx, src); err != nil && !errors.As(err, &fileErr) {
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
			return err
		}
	}
	if fileErr == nil && mk != nil && mk.rows >= 0 && mk.rows != sf.rows {
		fileErr = &fileLevelError{Msg: fmt.Sprintf("the file has %d rows but its marker says %d; nothing was suppressed", sf.rows, mk.rows)}
	}
	errorsReport, resultReport := reportPath(p, rel, errorsSuffix), reportPath(p, rel, resultSuffix)
	if err := removeReport(resultReport); err != nil {
		return err
	}
	log := in.log.With("partner", p.cfg.Name, "file", rel)
	switch {
	case fileErr != nil:
		errs := []store.FileError{{Line: fileErr.Line, Error: fileErr.Msg}}
		if err := in.st.RejectFile(ctx, fileID, fileErr.Msg, sf.rows, errs); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, errs); err != nil {
			return err
		}
		log.Info("suppression file rejected", "reason", fileErr.Msg)
	case sf.bad > 0 && (p.cfg.OnBadRows != config.SkipRows || len(sf.sups) == 0):
		summary := fmt.Sprintf("%d of %d rows have errors; nothing was suppressed. See reports/%s%s", sf.bad, sf.rows, filepath.Base(rel), errorsSuffix)
		if err := in.st.RejectFile(ctx, fileID, summary, sf.rows, sf.reportedErrors()); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, sf.reportedErrors()); err != nil {
			return err
		}
		log.Info("suppression file rejected", "rows", sf.rows, "bad_rows", sf.bad)
	default:
		added, present, err := in.st.ApplySuppressionFile(ctx, fileID, sf.rows, sf.sups)
		if err != nil {
			in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
			return err
		}
		if sf.bad > 0 {
			err = writeErrorsReport(errorsReport, sf.reportedErrors())
		} else {
			err = removeReport(errorsReport)
		}
		if err != nil {
			return err
		}
		if err := writeAtomic(resultReport, func(w *bufio.Writer) error {
			cw := csv.NewWriter(w)
			cw.Write([]string{"rows", "added", "already_suppressed", "skipped_rows"})
			cw.Write([]string{strconv.Itoa(sf.rows), strconv.Itoa(added), strconv.Itoa(present), strconv.Itoa(sf.bad)})
			cw.Flush()
			return cw.Error()
		}); err != nil {
			return err
		}
		log.Info("suppressions applied", "rows", sf.rows, "added", added, "already_suppressed", present, "skipped", sf.bad)
	}
	return in.archiveUpload(ctx, p, upload, fileID, mk)
}

// suppressFile is the reading of one suppress/ file. It borrows fileJob's
// row-error bookkeeping and decompression bound.
type suppressFile struct {
	fileJob
	checker suppressChecker
	sups    []store.Suppression
}

// read reads every CSV of the file (.csv, .txt, .gz, or each CSV in a .zip).
func (sf *suppressFile) read(ctx context.Context, f *os.File) error {
	base := filepath.Base(sf.rel)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read file: %w", err)
	}
	switch kindOf(base) {
	case kindPlain:
		return sf.readCSV(ctx, f)
	case kindGzip:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return &fileLevelError{Msg: "the file ends in .gz but is not whole gzip data; compress it with gzip again, or upload the plain .csv"}
		}
		defer zr.Close()
		err = sf.readCSV(ctx, sf.bounded(zr))
		var fe *fileLevelError
		if err != nil && !errors.As(err, &fe) && ctx.Err() == nil {
			return &fileLevelError{Msg: fmt.Sprintf("the gzip data is damaged or cut off (%v); compress the file again and upload it", err)}
		}
		return err
	case kindZip:
		zr, err := zip.NewReader(f, sf.fileSize(f))
		if err != nil {
			return &fileLevelError{Msg: "the file ends in .zip but is not a readable zip archive; create it again and upload it"}
		}
		read := 0
		for _, zf := range zr.File {
			if zf.FileInfo().IsDir() || config.IsTempName(zf.Name) || strings.HasPrefix(zf.Name, "__MACOSX/") || kindOf(zf.Name) != kindPlain {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				return &fileLevelError{Msg: fmt.Sprintf("%s inside the zip cannot be opened (%v); create the zip again and upload it", zf.Name, err)}
			}
			sf.entry = zf.Name
			err = sf.readCSV(ctx, sf.bounded(rc))
			rc.Close()
			if err != nil {
				var fe *fileLevelError
				if errors.As(err, &fe) {
					fe.Msg = zf.Name + ": " + fe.Msg
				}
				return err
			}
			read++
		}
		if read == 0 {
			return &fileLevelError{Msg: "the zip holds no .csv or .txt file; put the suppression CSVs in it and upload it again"}
		}
		return nil
	}
	return &fileLevelError{Msg: fmt.Sprintf("%q was not read: files in suppress/ must end in .csv, .txt, .csv.gz or .zip; save it as CSV and upload it again", base)}
}

func (sf *suppressFile) fileSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readCSV reads one CSV stream of suppressions.
func (sf *suppressFile) readCSV(ctx context.Context, r io.Reader) error {
	cr, err := newCSVReader(r, sf.p.cfg.Encoding, sf.in.cfg.Ingest.MaxRowBytes)
	switch {
	case errors.Is(err, errEmptyFile):
		return &fileLevelError{Msg: "the file is empty; upload a CSV with a header line (email and/or phone, optional reason and channel) and at least one row"}
	case err != nil:
		return csvFileError(err)
	}
	pos := map[string]int{}
	for i, n := range cr.names {
		switch n {
		case colEmail, colPhone, colReason, colChannel:
			if _, dup := pos[n]; dup {
				return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header names the column %q twice; keep one", n)}
			}
			pos[n] = i
		default:
			return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header's column %d, %q, is not a suppression column; use email and/or phone, and optionally reason and channel", i+1, cr.header[i])}
		}
	}
	_, hasEmail := pos[colEmail]
	_, hasPhone := pos[colPhone]
	if !hasEmail && !hasPhone {
		return &fileLevelError{Line: 1, Msg: "the header has neither an email nor a phone column; name the column of addresses or numbers never to message again"}
	}
	cell := func(fields []string, name string) string {
		if i, ok := pos[name]; ok && i < len(fields) {
			return fields[i]
		}
		return ""
	}
	rowsBefore := sf.rows
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		fields, line, err := cr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if sf.rows >= sf.p.cfg.MaxRows {
			return sf.tooManyRows()
		}
		sf.rows++
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			sf.rowError(line, "", "", quoteErrorMessage(pe))
			continue
		}
		if err != nil {
			return csvFileError(err)
		}
		if len(fields) != len(cr.names) {
			sf.rowError(line, "", "", fmt.Sprintf("the row has %d values but the header has %d columns; check for a missing or extra separator", len(fields), len(cr.names)))
			continue
		}
		if cr.checkUTF8 {
			bad := false
			for i, v := range fields {
				if !utf8.ValidString(v) {
					sf.rowError(line, cr.names[i], "", "the value is not valid UTF-8 text; save the file as UTF-8, or ask your administrator to set your encoding")
					bad = true
				}
			}
			if bad {
				continue
			}
		}
		e := SuppressEntry{Email: cell(fields, colEmail), Phone: cell(fields, colPhone), Channel: cell(fields, colChannel), Reason: cell(fields, colReason)}
		sups := sf.checker.check(e, sf.rel, func(column, value, msg string) { sf.rowError(line, column, value, msg) })
		sf.sups = append(sf.sups, sups...)
	}
	if sf.rows == rowsBefore {
		return &fileLevelError{Msg: "the file has a header line but no rows, so nothing was suppressed"}
	}
	return nil
}

// ingestDataFile reads a file of inbox/ or suppress/ that counts as
// complete.
func (in *Ingester) ingestDataFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	if isSuppressItem(workItem{rel: rel}) {
		return in.ingestSuppressFile(ctx, p, rel, how, mk)
	}
	if isSendsItem(rel) {
		return in.ingestSendsFile(ctx, p, rel, how, mk) // sendsingest.go
	}
	if isEventsItem(workItem{rel: rel}) {
		return in.ingestEventsFile(ctx, p, rel, how, mk)
	}
	return in.ingestRecipientFile(ctx, p, rel, how, mk)
}
