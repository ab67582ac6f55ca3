package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"io"
	"strings"
	"unicode/utf8"
)

// recordReader reads CSV records exactly as encoding/csv's Reader does
// with the options dropgate reads with (a one-byte Comma, no Comment,
// LazyQuotes and TrimLeadingSpace off, FieldsPerRecord -1, ReuseRecord):
// the same fields, the same *csv.ParseError with the same lines and
// columns, the same InputOffset. TestRecordReaderMatchesEncodingCSV and
// FuzzRecordReaderMatchesEncodingCSV hold it to that.
//
// It is faster on the common line: a record on one line with no double
// quote is turned into one string and cut at the commas, where
// encoding/csv copies every field into a buffer first and looks for a
// bare quote in each. A wide file (a dozen columns) spent over a quarter
// of its reading time there. Any line with a quote takes encoding/csv's
// own steps (parseQuoted, a port of its readRecord).
type recordReader struct {
	r     *bufio.Reader
	comma byte

	numLine int   // the last line read, as encoding/csv counts them
	offset  int64 // bytes consumed, encoding/csv's InputOffset

	rawBuffer    []byte // a line longer than r's buffer
	recordBuffer []byte // a quoted record's unescaped fields
	fieldIndexes []int
	record       []string

	// Of the record last returned: the line it starts on, and the line
	// its last field ends on.
	startLine, endLine int
	// plain is the record's text when it was one line without a quote:
	// its fields are then valid UTF-8 exactly when plain is, as the
	// one-byte commas between them are boundaries of any UTF-8 text.
	plain   string
	isPlain bool
}

func newRecordReader(r *bufio.Reader, comma byte) *recordReader {
	return &recordReader{r: r, comma: comma}
}

// inputOffset is encoding/csv's InputOffset: the bytes consumed by the
// records read so far.
func (rr *recordReader) inputOffset() int64 { return rr.offset }

// validUTF8 reports whether every field of the record last returned is
// valid UTF-8, at one check of the whole line when it was plain.
func (rr *recordReader) validUTF8(fields []string) bool {
	if rr.isPlain {
		return utf8.ValidString(rr.plain)
	}
	for _, f := range fields {
		if !utf8.ValidString(f) {
			return false
		}
	}
	return true
}

// readLine is encoding/csv's: the next line, with "\r\n" turned into "\n"
// and a last "\r" before the end of the input dropped.
func (rr *recordReader) readLine() ([]byte, error) {
	line, err := rr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		rr.rawBuffer = append(rr.rawBuffer[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = rr.r.ReadSlice('\n')
			rr.rawBuffer = append(rr.rawBuffer, line...)
		}
		line = rr.rawBuffer
	}
	readSize := len(line)
	if readSize > 0 && err == io.EOF {
		err = nil
		if line[readSize-1] == '\r' {
			line = line[:readSize-1]
		}
	}
	rr.numLine++
	rr.offset += int64(readSize)
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	return line, err
}

// lengthNL is the length of b's trailing "\n", 0 or 1.
func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// read returns the next record, reused by the next call, as
// encoding/csv's Read does; io.EOF at the end.
func (rr *recordReader) read() ([]string, error) {
	var line []byte
	var errRead error
	for errRead == nil {
		line, errRead = rr.readLine()
		if errRead == nil && len(line) == lengthNL(line) {
			continue // a blank line
		}
		break
	}
	if errRead == io.EOF {
		return nil, errRead
	}
	rr.startLine = rr.numLine
	if bytes.IndexByte(line, '"') >= 0 {
		rr.isPlain, rr.plain = false, ""
		return rr.parseQuoted(line, errRead)
	}
	s := string(line[:len(line)-lengthNL(line)])
	rr.isPlain, rr.plain = true, s
	rr.record = rr.record[:0]
	for {
		i := strings.IndexByte(s, rr.comma)
		if i < 0 {
			rr.record = append(rr.record, s)
			break
		}
		rr.record = append(rr.record, s[:i])
		s = s[i+1:]
	}
	rr.endLine = rr.numLine
	return rr.record, errRead
}

// parseQuoted reads a record whose first line holds a double quote:
// encoding/csv's readRecord from its field loop on, with LazyQuotes and
// TrimLeadingSpace off and a one-byte comma.
func (rr *recordReader) parseQuoted(line []byte, errRead error) ([]string, error) {
	const quoteLen = 1
	const commaLen = 1
	var err error
	recLine := rr.numLine
	rr.recordBuffer = rr.recordBuffer[:0]
	rr.fieldIndexes = rr.fieldIndexes[:0]
	type position struct{ line, col int }
	pos := position{line: rr.numLine, col: 1}
	lastField := pos // where the last field appended starts
parseField:
	for {
		if len(line) == 0 || line[0] != '"' {
			i := bytes.IndexByte(line, rr.comma)
			field := line
			if i >= 0 {
				field = field[:i]
			} else {
				field = field[:len(field)-lengthNL(field)]
			}
			if j := bytes.IndexByte(field, '"'); j >= 0 {
				err = &csv.ParseError{StartLine: recLine, Line: rr.numLine, Column: pos.col + j, Err: csv.ErrBareQuote}
				break parseField
			}
			rr.recordBuffer = append(rr.recordBuffer, field...)
			rr.fieldIndexes = append(rr.fieldIndexes, len(rr.recordBuffer))
			lastField = pos
			if i >= 0 {
				line = line[i+commaLen:]
				pos.col += i + commaLen
				continue parseField
			}
			break parseField
		}
		fieldPos := pos
		line = line[quoteLen:]
		pos.col += quoteLen
		for {
			i := bytes.IndexByte(line, '"')
			switch {
			case i >= 0:
				rr.recordBuffer = append(rr.recordBuffer, line[:i]...)
				line = line[i+quoteLen:]
				pos.col += i + quoteLen
				rn, _ := utf8.DecodeRune(line)
				switch {
				case rn == '"':
					rr.recordBuffer = append(rr.recordBuffer, '"')
					line = line[quoteLen:]
					pos.col += quoteLen
				case rn == rune(rr.comma):
					line = line[commaLen:]
					pos.col += commaLen
					rr.fieldIndexes = append(rr.fieldIndexes, len(rr.recordBuffer))
					lastField = fieldPos
					continue parseField
				case lengthNL(line) == len(line):
					rr.fieldIndexes = append(rr.fieldIndexes, len(rr.recordBuffer))
					lastField = fieldPos
					break parseField
				default:
					err = &csv.ParseError{StartLine: recLine, Line: rr.numLine, Column: pos.col - quoteLen, Err: csv.ErrQuote}
					break parseField
				}
			case len(line) > 0:
				rr.recordBuffer = append(rr.recordBuffer, line...)
				if errRead != nil {
					break parseField
				}
				pos.col += len(line)
				line, errRead = rr.readLine()
				if len(line) > 0 {
					pos.line++
					pos.col = 1
				}
				if errRead == io.EOF {
					errRead = nil
				}
			default:
				if errRead == nil {
					err = &csv.ParseError{StartLine: recLine, Line: pos.line, Column: pos.col, Err: csv.ErrQuote}
					break parseField
				}
				rr.fieldIndexes = append(rr.fieldIndexes, len(rr.recordBuffer))
				lastField = fieldPos
				break parseField
			}
		}
	}
	if err == nil {
		err = errRead
	}
	str := string(rr.recordBuffer)
	rr.record = rr.record[:0]
	pre := 0
	for _, idx := range rr.fieldIndexes {
		rr.record = append(rr.record, str[pre:idx])
		pre = idx
	}
	if n := len(rr.record); n > 0 {
		rr.endLine = lastField.line + strings.Count(rr.record[n-1], "\n")
	}
	return rr.record, err
}
