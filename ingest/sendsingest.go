package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// A list send started by a drop, for systems that only move files:
// sends/<name>.toml names the list, the template, the segment and when:
//
//	list     = "customers"
//	template = "spring-sale"
//	segment  = 'city == "Lisbon" && orders > 2'
//	send_at  = "2026-04-01 09:00"
//
// The file is held, refused as a duplicate and archived like any drop.
// Its problems (TOML, unknown keys, an unknown list or template, a bad
// segment or send_at) reject it with reports/<name>.toml.errors.csv, each
// at its line and column in the file; a good one queues the job and gets
// reports/<name>.toml.result.csv with the counts, and the contacts that
// could not be messaged in reports/<name>.toml.errors.csv (line 0).

// maxSendsFileBytes bounds a sends/ file: it names a few values.
const maxSendsFileBytes = 64 << 10

// sendsFile is the content of a sends/ file. Unknown keys are errors.
type sendsFile struct {
	List     string `toml:"list"`
	Template string `toml:"template"`
	Segment  string `toml:"segment"`
	SendAt   string `toml:"send_at"`
}

// isSendsItem reports whether the file is in the partner's sends/.
func isSendsItem(rel string) bool {
	return strings.HasPrefix(rel, config.SendsDir+"/")
}

// ingestSendsFile reads one file of sends/ and, when it is good, makes
// its list send.
func (in *Ingester) ingestSendsFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	tf, err := in.takeFile(ctx, p, rel, how)
	if tf == nil || err != nil {
		return err
	}
	defer tf.src.Close()
	abs, facts, upload := tf.upload.abs, tf.facts, tf.upload
	var errs []store.FileError
	fail := func(line, col int, column, value, msg string) {
		if col > 0 {
			column = strconv.Itoa(col)
		}
		errs = append(errs, store.FileError{Line: line, Column: column, Value: value, Error: msg})
	}
	switch {
	case mk != nil && mk.problem != "":
		fail(0, 0, "", "", mk.problem+"; nothing was sent: upload the marker again")
	case mk != nil && mk.sha != "" && mk.sha != facts.sha:
		fail(0, 0, "", "", fmt.Sprintf("the file's SHA-256 is %s but its marker says %s; nothing was sent. Upload the whole file again, then its marker", facts.sha, mk.sha))
	case !strings.EqualFold(filepath.Ext(rel), ".toml"):
		fail(0, 0, "", "", fmt.Sprintf("%q was not read: files in sends/ are .toml files naming list, template, segment and send_at; see the README's \"Segments and list sends\"", filepath.Base(rel)))
	case facts.size > maxSendsFileBytes:
		fail(0, 0, "", "", fmt.Sprintf("the file is larger than %d bytes; a sends/ file names a list, a template, a segment and a time", maxSendsFileBytes))
	}
	dup, err := in.st.FileBySHA256(ctx, p.cfg.Name, facts.sha)
	switch {
	case err == nil && dup.Name == rel && dup.ArchivePath == "":
		return in.archiveUpload(ctx, p, upload, dup.ID, mk) // sent before a crash, never archived
	case err == nil && len(errs) == 0:
		fail(0, 0, "", "", fmt.Sprintf("this file has the same content as %s, already taken (job %d), so nothing was sent again; to send again, change the file (for example send_at, or a # comment with the date)", dup.Name, dup.JobID))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("cannot check for a duplicate: %w", err)
	}
	fileID, err := in.st.CreateFile(ctx, store.File{Partner: p.cfg.Name, Name: rel, Size: facts.size, SHA256: facts.sha})
	if err != nil {
		return err
	}
	var res ListSendResult
	var sf sendsFile
	if len(errs) == 0 {
		var text string
		sf, text, errs = readSendsFile(abs)
		if len(errs) == 0 {
			req := ListSendRequest{List: sf.List, Template: sf.Template, Segment: sf.Segment, SendAt: sf.SendAt}
			var problems []SendProblem
			res, problems, err = in.sendToList(ctx, p, req, fileID, rel)
			switch {
			case errors.Is(err, store.ErrNotFound):
				line, col := keyPosition(text, "list")
				fail(line, col, "list", sf.List, fmt.Sprintf("there is no list named %q; drop its contacts into lists/%s/ first, or correct the name", sf.List, sf.List))
			case err != nil:
				in.st.ForgetReceivedFile(context.WithoutCancel(ctx), fileID)
				return err
			}
			for _, pr := range problems {
				line, col := keyPosition(text, pr.Field)
				if pr.Field == "segment" && pr.Line > 0 {
					line, col = segmentPosition(text, pr.Line, pr.Column)
				}
				fail(line, col, pr.Field, pr.Value, pr.Message)
			}
		}
	}
	if err := in.stillClaimed(ctx, p, rel); err != nil { // claims.go: reports are the claim holder's
		return err
	}
	errorsReport, resultReport := reportPath(p, rel, errorsSuffix), reportPath(p, rel, resultSuffix)
	if err := removeReport(resultReport); err != nil {
		return err
	}
	log := in.log.With("partner", p.cfg.Name, "file", rel)
	if len(errs) > 0 {
		summary := fmt.Sprintf("the send was not made: %s. See reports/%s%s", errs[0].Error, filepath.Base(rel), errorsSuffix)
		if err := in.st.RejectFile(in.claimFence(ctx, p, rel), fileID, summary, 0, errs); err != nil {
			return err
		}
		if err := writeErrorsReport(errorsReport, errs); err != nil {
			return err
		}
		log.Info("sends file rejected", "reason", errs[0].Error)
		return in.archiveUpload(ctx, p, upload, fileID, mk)
	}
	// Queued: the job's commit marked the file queued with its job.
	if len(res.Errors) > 0 {
		rejected := make([]store.FileError, 0, len(res.Errors))
		for _, e := range res.Errors {
			rejected = append(rejected, store.FileError{Column: e.Column, Value: e.Value, Error: fmt.Sprintf("contact %d: %s", e.ContactID, e.Error)})
		}
		err = writeErrorsReport(errorsReport, rejected)
	} else {
		err = removeReport(errorsReport)
	}
	if err != nil {
		return err
	}
	if err := writeAtomic(resultReport, func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"job", "list", "considered", "matched", "skipped_by_error", "rejected", "queued", "first_skip_error"})
		cw.Write([]string{strconv.FormatInt(res.JobID, 10), sf.List, strconv.Itoa(res.Considered), strconv.Itoa(res.Matched),
			strconv.Itoa(res.SkippedByError), strconv.Itoa(res.Rejected), strconv.Itoa(res.Queued), res.FirstSkipError})
		cw.Flush()
		return cw.Error()
	}); err != nil {
		return err
	}
	return in.archiveUpload(ctx, p, upload, fileID, mk)
}

// readSendsFile decodes a sends/ file strictly: TOML syntax, value types,
// unknown and missing keys are errors at their line and column. It
// returns the file's text for positions.
func readSendsFile(path string) (sendsFile, string, []store.FileError) {
	text, err := readSmallFile(path, maxSendsFileBytes)
	if err != nil {
		return sendsFile{}, "", []store.FileError{{Error: fmt.Sprintf("the file cannot be read: %v", err)}}
	}
	var sf sendsFile
	md, err := toml.Decode(text, &sf)
	var pe toml.ParseError
	switch {
	case errors.As(err, &pe):
		return sf, text, []store.FileError{{Line: pe.Position.Line, Column: strconv.Itoa(pe.Position.Col),
			Error: fmt.Sprintf("this is not valid TOML: %s; write key = \"value\" lines (list, template, segment, send_at)", pe.Message)}}
	case err != nil:
		return sf, text, []store.FileError{{Error: fmt.Sprintf("this is not valid TOML: %v", err)}}
	}
	var errs []store.FileError
	for _, k := range md.Undecoded() {
		line, col := keyPosition(text, k.String())
		errs = append(errs, store.FileError{Line: line, Column: strconv.Itoa(col), Value: k.String(),
			Error: fmt.Sprintf("%q is not a key of a sends/ file; use list, template, segment and send_at", k.String())})
	}
	for _, req := range []struct{ key, v string }{{"list", sf.List}, {"template", sf.Template}} {
		if strings.TrimSpace(req.v) == "" {
			errs = append(errs, store.FileError{Column: req.key, Error: fmt.Sprintf("the file names no %s; add a line %s = \"...\"", req.key, req.key)})
		}
	}
	return sf, text, errs
}

// keyPosition is the line and column (1-based) of a top-level key's
// assignment in a TOML text, or 0, 0 when it is not found.
func keyPosition(text, key string) (int, int) {
	re := regexp.MustCompile(`^(\s*)(?:` + regexp.QuoteMeta(key) + `|"` + regexp.QuoteMeta(key) + `"|'` + regexp.QuoteMeta(key) + `')\s*=`)
	for i, line := range strings.Split(text, "\n") {
		if m := re.FindStringSubmatchIndex(line); m != nil {
			return i + 1, m[3] + 1
		}
	}
	return 0, 0
}

// segmentPosition maps a line and column in the segment expression to
// the file: the expression starts after the segment key's opening quote
// (or, for a multi-line string, on the next line when the quotes end
// their line). Escapes in a basic string shift the column; the line is
// exact.
func segmentPosition(text string, line, col int) (int, int) {
	keyLine, _ := keyPosition(text, "segment")
	if keyLine == 0 {
		return 0, 0
	}
	lines := strings.Split(text, "\n")
	l := lines[keyLine-1]
	eq := strings.IndexByte(l, '=')
	rest := l[eq+1:]
	start := eq + 1 + len(rest) - len(strings.TrimLeft(rest, " \t"))
	startLine, startCol := keyLine, start+2 // after a one-character quote
	if q := l[start:]; strings.HasPrefix(q, `"""`) || strings.HasPrefix(q, `'''`) {
		startCol = start + 4
		if strings.TrimSpace(q[3:]) == "" {
			startLine, startCol = keyLine+1, 1 // TOML drops the newline after the quotes
		}
	}
	if line == 1 {
		return startLine, startCol + col - 1
	}
	return startLine + line - 1, col
}
