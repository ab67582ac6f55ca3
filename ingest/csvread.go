package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"
)

// readBufferSize is the read-ahead of one CSV stream. The delimiter is
// sniffed within it, and it bounds how far the byte count may run ahead of
// the record being parsed.
const readBufferSize = 64 << 10

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// errEmptyFile means a stream holds no record at all, not even a header.
var errEmptyFile = errors.New("empty file")

// recordTooLongError means one record grew past the per-row limit. The
// reader that notices it knows neither; csvReader fills them in.
type recordTooLongError struct {
	Line   int // where the record starts
	Limit  int // ingest.max_row_bytes
	Header bool
}

func (e *recordTooLongError) Error() string {
	if e.Header {
		return fmt.Sprintf("the header (line %d) is longer than %d bytes, the most one line may have", e.Line, e.Limit)
	}
	return fmt.Sprintf("the row starting on line %d is longer than %d bytes, the most one row may have", e.Line, e.Limit)
}

// csvReader streams one CSV file record by record. It never holds more than
// one record (bounded by maxRow bytes) plus its read-ahead buffer, whatever
// the file size.
type csvReader struct {
	r *recordReader
	// header holds the column names as written; names the trimmed,
	// lower-case names used to match columns.
	header []string
	names  []string
	comma  rune
	// checkUTF8 is set for UTF-8 input: the CSV parser passes invalid bytes
	// through, and they must be reported rather than sent.
	checkUTF8 bool
	counter   *countingReader
	maxRow    int
	// nextLine is the line the next record starts on: the line after the
	// last one the previous record (or parse error) took. Blank lines
	// before a record are not counted in it.
	nextLine int
	// recordStart is the offset where the record being read begins.
	// The reader's offset moves on line by line inside a quoted
	// multi-line value, so it cannot bound a record by itself.
	recordStart int64
}

// newCSVReader prepares src for reading: it drops a UTF-8 byte order mark
// (a file with one is read as UTF-8 whatever the partner's encoding), decodes
// from encodingName, sniffs the delimiter from the first line and reads the
// header. It returns errEmptyFile for a file with no record.
func newCSVReader(src io.Reader, encodingName string, maxRow int) (*csvReader, error) {
	raw := bufio.NewReaderSize(src, readBufferSize)
	isUTF8 := isUTF8Name(encodingName)
	if b, _ := raw.Peek(3); bytes.Equal(b, utf8BOM) {
		raw.Discard(3)
		isUTF8 = true
	}
	var decoded io.Reader = raw
	if !isUTF8 {
		enc, err := lookupEncoding(encodingName)
		if err != nil {
			return nil, err
		}
		// golang.org/x/text's decoders turn bytes they cannot decode
		// into U+FFFD rather than fail.
		decoded = transform.NewReader(raw, enc.NewDecoder())
	}
	cr := &csvReader{checkUTF8: isUTF8, maxRow: maxRow, nextLine: 1}
	cr.counter = &countingReader{r: decoded, over: cr.overLimit}
	br := bufio.NewReaderSize(cr.counter, readBufferSize)
	first, _ := br.Peek(readBufferSize)
	cr.comma = sniffDelimiter(first)
	// Ragged rows are row errors, reported by the caller.
	cr.r = newRecordReader(br, byte(cr.comma))

	header, err := cr.r.read()
	if errors.Is(err, io.EOF) {
		return nil, errEmptyFile
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, headerParseError(pe)
	}
	var tooLong *recordTooLongError
	if errors.As(err, &tooLong) {
		tooLong.Line, tooLong.Limit, tooLong.Header = cr.nextLine, cr.maxRow, true
	}
	if err != nil {
		return nil, err
	}
	cr.nextLine = cr.r.endLine + 1
	cr.recordStart = cr.r.inputOffset()
	cr.header = append([]string(nil), header...)
	cr.names = make([]string, len(header))
	for i, h := range header {
		cr.names[i] = strings.ToLower(strings.TrimSpace(h))
	}
	return cr, nil
}

// read returns the next record and the physical line it starts on (1-based;
// the header is line 1 when the file has no blank lines before it). The
// returned slice is reused by the next call. A *csv.ParseError is returned
// with the record's line; reading may go on after it.
func (cr *csvReader) read() (fields []string, line int, err error) {
	fields, err = cr.r.read()
	cr.recordStart = cr.r.inputOffset()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			cr.nextLine = pe.Line + 1
			return nil, pe.StartLine, err
		}
		var tooLong *recordTooLongError
		if errors.As(err, &tooLong) {
			tooLong.Line, tooLong.Limit = cr.nextLine, cr.maxRow
		}
		return nil, cr.nextLine, err
	}
	cr.nextLine = cr.r.endLine + 1
	return fields, cr.r.startLine, nil
}

// validUTF8 reports whether every field of the record read last is valid
// UTF-8; for a plain line, in one look at the whole line.
func (cr *csvReader) validUTF8(fields []string) bool {
	return cr.r.validUTF8(fields)
}

// headerParseError is the partner's message for a header encoding/csv
// cannot parse. A stray quote on the first line almost always means the
// file is not CSV at all (a spreadsheet, a PDF, an archive under a .csv
// name), so the message says that first.
func headerParseError(pe *csv.ParseError) *fileLevelError {
	what := "a quote inside an unquoted field"
	if !errors.Is(pe.Err, csv.ErrBareQuote) {
		what = "a quoted field that is not closed properly"
	}
	return &fileLevelError{Line: pe.StartLine, Msg: fmt.Sprintf("line %d, column %d: this does not look like a CSV file (%s); "+
		"save it as CSV (text, one row per line, values separated by commas or semicolons) and upload it again. "+
		"If it is CSV, put that header value in double quotes and write each \" inside it twice", pe.Line, pe.Column, what)}
}

// csvFileError turns a reading error that stops the whole file into the
// partner's message, or passes dropgate's own errors through.
func csvFileError(err error) error {
	var tooLong *recordTooLongError
	if errors.As(err, &tooLong) {
		return &fileLevelError{Line: tooLong.Line, Msg: fmt.Sprintf("%s; this is usually a quote (\") that opens a value and is never closed, or a file that is not CSV", tooLong.Error())}
	}
	var tooBig *expandedTooLargeError
	if errors.As(err, &tooBig) {
		return &fileLevelError{Msg: tooBig.Error()}
	}
	if strings.HasPrefix(err.Error(), "encoding ") {
		return &fileLevelError{Msg: fmt.Sprintf("the file cannot be decoded (%v); ask your administrator to check your encoding setting", err)}
	}
	return err
}

// overLimit reports whether the bytes read so far run further past the
// start of the record being read than one record (plus the read-ahead) may
// be long.
func (cr *csvReader) overLimit(read int64) bool {
	return read-cr.recordStart > int64(cr.maxRow)+readBufferSize
}

// countingReader counts bytes and fails once over reports a too-long record,
// so that one endless line cannot fill memory.
type countingReader struct {
	r    io.Reader
	n    int64
	over func(int64) bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.over(c.n) {
		return n, &recordTooLongError{}
	}
	return n, err
}

// sniffDelimiter picks the most frequent of , ; tab | on the first line,
// outside quotes. Ties go to the earlier in that list; none means ",".
func sniffDelimiter(b []byte) rune {
	candidates := []byte{',', ';', '\t', '|'}
	var counts [4]int
	inQuotes := false
	for _, c := range b {
		if c == '"' {
			inQuotes = !inQuotes
			continue
		}
		if inQuotes {
			continue
		}
		if c == '\n' {
			break
		}
		for i, d := range candidates {
			if c == d {
				counts[i]++
			}
		}
	}
	best := 0
	for i := range candidates {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return rune(candidates[best])
}

func isUTF8Name(name string) bool {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "utf-8", "utf8":
		return true
	}
	return false
}

// lookupEncoding finds a decoder by IANA name (windows-1252, iso-8859-1...).
func lookupEncoding(name string) (encoding.Encoding, error) {
	enc, err := ianaindex.IANA.Encoding(name)
	if err != nil {
		return nil, fmt.Errorf("encoding %q: %w", name, err)
	}
	if enc == nil {
		return nil, fmt.Errorf("encoding %q is known but not supported", name)
	}
	return enc, nil
}
