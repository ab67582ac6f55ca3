package ingest

import (
	"archive/zip"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/dropgate/dropgate/config"
)

// The reading that every data file but recipient files shares (suppress/,
// lists/<list>/): which CSVs a file holds (.csv, .txt, .csv.gz, each CSV
// in a .zip), and the records of one CSV with the row checks that do not
// depend on what the file means. Row errors are kept in the fileJob,
// whose bookkeeping (line, column, bound on listed errors) recipient files
// use too.

// openDataCSV reads one CSV stream's header; empty is the partner's
// message for a stream with no line at all.
func (fj *fileJob) openDataCSV(r io.Reader, empty string) (*csvReader, error) {
	cr, err := newCSVReader(r, fj.p.cfg.Encoding, fj.in.cfg.Ingest.MaxRowBytes)
	switch {
	case errors.Is(err, errEmptyFile):
		return nil, &fileLevelError{Msg: empty}
	case err != nil:
		return nil, csvFileError(err)
	}
	if cr.checkUTF8 {
		for i, h := range cr.header {
			if !utf8.ValidString(h) {
				return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header's column %d is not valid UTF-8 text; save the file as UTF-8, or ask your administrator to set your encoding (for example windows-1252)", i+1)}
			}
		}
	}
	return cr, nil
}

// eachRecord reads the records after the header and calls row with each
// one that has as many values as the header and only valid text. A quote
// error, a ragged row or invalid UTF-8 is a row error; more rows than the
// partner's max_rows, or a stream that cannot be read, stops the file.
// The fields passed to row are reused by the next record.
func (fj *fileJob) eachRecord(ctx context.Context, cr *csvReader, row func(fields []string, line int) error) error {
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		fields, line, err := cr.read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if fj.rows >= fj.p.cfg.MaxRows {
			return fj.tooManyRows()
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			fj.rows++
			fj.rowError(line, "", "", quoteErrorMessage(pe))
			continue
		}
		if err != nil {
			return csvFileError(err)
		}
		fj.rows++
		if len(fields) != len(cr.names) {
			fj.rowError(line, "", "", fmt.Sprintf("the row has %d values but the header has %d columns; check for a missing or extra '%c', or a value holding '%c' that is not in double quotes",
				len(fields), len(cr.names), cr.comma, cr.comma))
			continue
		}
		if cr.checkUTF8 {
			bad := false
			for i, v := range fields {
				if !utf8.ValidString(v) {
					fj.rowError(line, cr.header[i], strings.ToValidUTF8(v, "\uFFFD"), "this value is not valid UTF-8 text; save the file as UTF-8, or ask your administrator to set your encoding (for example windows-1252)")
					bad = true
				}
			}
			if bad {
				continue
			}
		}
		if err := row(fields, line); err != nil {
			return err
		}
	}
}

// readDataFile reads every CSV of f with readCSV: the file itself, its
// gunzipped content, or each .csv/.txt inside a zip (its errors prefixed
// with the entry's name). folder names the file's folder ("suppress/")
// and holds what the zip should contain, for the partner's messages.
func (fj *fileJob) readDataFile(ctx context.Context, f *os.File, folder, holds string, readCSV func(context.Context, io.Reader) error) error {
	base := filepath.Base(fj.rel)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read file: %w", err)
	}
	fj.expanded, fj.entry = 0, ""
	switch kindOf(base) {
	case kindPlain:
		return readCSV(ctx, f)
	case kindGzip:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return &fileLevelError{Msg: "the file ends in .gz but is not whole gzip data; compress it with gzip again, or upload the plain .csv"}
		}
		defer zr.Close()
		err = readCSV(ctx, fj.bounded(zr))
		var fe *fileLevelError
		if err != nil && !errors.As(err, &fe) && ctx.Err() == nil {
			return &fileLevelError{Msg: fmt.Sprintf("the gzip data is damaged or cut off (%v); compress the file again and upload it", err)}
		}
		return err
	case kindZip:
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
			if zf.FileInfo().IsDir() || config.IsTempName(zf.Name) || strings.HasPrefix(zf.Name, "__MACOSX/") || kindOf(zf.Name) != kindPlain {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				return &fileLevelError{Msg: fmt.Sprintf("%s inside the zip cannot be opened (%v); create the zip again and upload it", zf.Name, err)}
			}
			fj.entry = zf.Name
			err = readCSV(ctx, fj.bounded(rc))
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
		fj.entry = ""
		if read == 0 {
			return &fileLevelError{Msg: "the zip holds no .csv or .txt file; put " + holds + " in it and upload it again"}
		}
		return nil
	}
	return &fileLevelError{Msg: fmt.Sprintf("%q was not read: files in %s must end in .csv, .txt, .csv.gz or .zip; save it as CSV and upload it again", base, folder)}
}
