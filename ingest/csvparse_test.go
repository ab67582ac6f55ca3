package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// errStop is the error failingReader returns, standing for the errors of
// the readers under the CSV parser (a record too long, a decoder).
var errStop = errors.New("stop")

// failingReader returns errStop once n bytes have been read (never when
// n < 0), along with the last bytes, as countingReader does.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n < 0 {
		return f.r.Read(p)
	}
	if f.n == 0 {
		return 0, errStop
	}
	n, err := f.r.Read(p[:min(len(p), f.n)])
	f.n -= n
	if f.n == 0 {
		return n, errStop
	}
	return n, err
}

// compareWithEncodingCSV reads data with recordReader and with
// encoding/csv as dropgate configured it, record by record, and fails at
// the first difference: fields, error (a *csv.ParseError's lines and
// column too), the record's first line and the line its last field ends
// on, and the input offset.
func compareWithEncodingCSV(t *testing.T, data string, comma byte, failAt int) {
	t.Helper()
	want := csv.NewReader(bufio.NewReaderSize(&failingReader{r: strings.NewReader(data), n: failAt}, 4096))
	want.Comma = rune(comma)
	want.FieldsPerRecord = -1
	want.ReuseRecord = true
	got := newRecordReader(bufio.NewReaderSize(&failingReader{r: strings.NewReader(data), n: failAt}, 4096), comma)
	for n := 1; n < 100_000; n++ {
		wf, werr := want.Read()
		gf, gerr := got.read()
		var wpe, gpe *csv.ParseError
		switch {
		case errors.As(werr, &wpe):
			if !errors.As(gerr, &gpe) || *wpe != *gpe {
				t.Fatalf("data %q comma %q fail at %d, record %d: error %v, encoding/csv %v", data, comma, failAt, n, gerr, werr)
			}
		case werr != gerr:
			t.Fatalf("data %q comma %q fail at %d, record %d: error %v, encoding/csv %v", data, comma, failAt, n, gerr, werr)
		}
		if off := want.InputOffset(); got.inputOffset() != off {
			t.Fatalf("data %q comma %q, record %d: offset %d, encoding/csv %d", data, comma, n, got.inputOffset(), off)
		}
		if werr == io.EOF {
			return
		}
		if werr != nil && wpe != nil {
			continue // the fields of a parse error are not used
		}
		if !slices.Equal(gf, wf) {
			t.Fatalf("data %q comma %q fail at %d, record %d: fields %q, encoding/csv %q", data, comma, failAt, n, gf, wf)
		}
		if werr != nil {
			return // the underlying reader's error: reading stops
		}
		first, _ := want.FieldPos(0)
		last, _ := want.FieldPos(len(wf) - 1)
		last += strings.Count(wf[len(wf)-1], "\n")
		if got.startLine != first || got.endLine != last {
			t.Fatalf("data %q comma %q, record %d: lines %d-%d, encoding/csv %d-%d", data, comma, n, got.startLine, got.endLine, first, last)
		}
		valid := true
		for _, f := range wf {
			valid = valid && utf8.ValidString(f)
		}
		if got.validUTF8(gf) != valid {
			t.Fatalf("data %q, record %d: validUTF8 %v, want %v", data, n, !valid, valid)
		}
	}
	t.Fatalf("data %q: no end", data)
}

var recordReaderCases = []string{
	"",
	"\n",
	"\n\n\n",
	"a",
	"a\n",
	"a,b,c\n1,2,3\n",
	"a,b,c\r\n1,2,3\r\n",
	"a,b\r\n1,2\r",
	"a,b\r1,2\r\n",
	"a,,\n,,\n",
	"\xef\xbb\xbfa,b\n1,2\n",
	"phone,name\n912345678,\"Ana\"\n",
	"phone,name\n912345678,\"A\"\"na\"\n",
	"phone,name\n912345678,\"A\nna\"\n912345679,x\n",
	"phone,name\r\n912345678,\"A\r\nna\r\n\"\r\n912345679,x\r\n",
	"phone,name\n912345678,A\"na\n912345679,x\n",
	"phone,name\n912345678,\"A\"na\n912345679,x\n",
	"phone,name\n912345678,\"Ana\n",
	"phone,name\n912345678,\"Ana",
	"phone,name\n912345678,\"Ana\"",
	"phone,name\n912345678,\"Ana\"\r",
	"phone,name\n\"9123\",\"Ana\",\n",
	"phone,name\n\"\"\n\"\"\"\"\n",
	"a,b\n1,2\n\n\n3,4\n\n",
	"a,b\n\"x\n\n\ny\",z\n",
	"a,b\n\"x\"y,z\n",
	"a,b\nx,\"y\"\"\n",
	"a;b\n1;\"2;3\"\n",
	"a\tb\n1\t\"2\t3\"\n",
	"a|b\n\"unclosed|x\n",
	"a,b\n\xff\xfe,\"\xc3\"\n\xc3,\xa9\n",
	"a,b\n" + strings.Repeat("x", 10_000) + "," + strings.Repeat("y", 5000) + "\n",
	"a,b\n\"" + strings.Repeat("x\n", 3000) + "\",1\n",
	"a,b\n\"" + strings.Repeat("x", 9000) + "\"\"\",1\n2,3",
}

// TestRecordReaderMatchesEncodingCSV holds the fast CSV parser equal to
// encoding/csv on valid and invalid input: quotes, CRLF, blank lines, a
// BOM (passed through, as newCSVReader strips it first), bare and
// unclosed quotes, lines longer than the read buffer, and a reader that
// fails partway.
func TestRecordReaderMatchesEncodingCSV(t *testing.T) {
	for _, data := range recordReaderCases {
		for _, comma := range []byte{',', ';', '\t', '|'} {
			compareWithEncodingCSV(t, data, comma, -1)
			for _, at := range []int{0, 1, 5, 9, 17, len(data) / 2, len(data) - 1, len(data)} {
				compareWithEncodingCSV(t, data, comma, at)
			}
		}
	}
}

// FuzzRecordReaderMatchesEncodingCSV: any input, any of the delimiters
// dropgate sniffs, a reader that may fail anywhere.
func FuzzRecordReaderMatchesEncodingCSV(f *testing.F) {
	for _, c := range recordReaderCases {
		if len(c) < 1000 {
			f.Add([]byte(c), byte(0), -1)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, commaIndex byte, failAt int) {
		comma := []byte{',', ';', '\t', '|'}[commaIndex%4]
		if failAt < -1 || failAt > len(data)+1 {
			failAt = -1
		}
		compareWithEncodingCSV(t, string(data), comma, failAt)
	})
}

// TestCSVReaderReportsLinesOfEveryRecordShape reads a file with every kind
// of record through newCSVReader and checks the lines it reports, which
// the partner's error report shows.
func TestCSVReaderReportsLinesOfEveryRecordShape(t *testing.T) {
	data := "\n\nphone,name\r\n" + // header on line 3
		"911111111,Ana\r\n" + // 4
		"\n" +
		"922222222,\"Bru\r\nno\"\r\n" + // 6-7
		"933333333,Car\"la\n" + // 8: bare quote
		"944444444,\"Duarte\"x\n" + // 9: bad quote
		"955555555,Eva\n" // 10
	cr, err := newCSVReader(bytes.NewReader([]byte(data)), "utf-8", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cr.header, []string{"phone", "name"}) {
		t.Fatalf("header %q", cr.header)
	}
	type rec struct {
		line  int
		first string
		quote bool
	}
	want := []rec{{4, "911111111", false}, {6, "922222222", false}, {8, "", true}, {9, "", true}, {10, "955555555", false}}
	for _, w := range want {
		fields, line, err := cr.read()
		var pe *csv.ParseError
		if got := errors.As(err, &pe); got != w.quote || (err != nil && !got) {
			t.Fatalf("line %d: err %v", w.line, err)
		}
		if line != w.line || (!w.quote && fields[0] != w.first) {
			t.Fatalf("got line %d %q, want line %d %q", line, fields, w.line, w.first)
		}
	}
	if _, _, err := cr.read(); err != io.EOF {
		t.Fatalf("err %v, want EOF", err)
	}
}

// BenchmarkRecordReader reads 100,000 rows of the ingest benchmark's
// mixed file (12 columns, ~126 bytes a row) from memory with encoding/csv
// as dropgate configured it and with recordReader, in the same run:
//
//	go test ./ingest -run '^$' -bench BenchmarkRecordReader -benchmem -count 5
func BenchmarkRecordReader(b *testing.B) {
	path := b.TempDir() + "/mixed.csv"
	if _, err := writeMixedBenchCSV(path, 100_000); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding-csv", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			r := csv.NewReader(bufio.NewReaderSize(bytes.NewReader(data), readBufferSize))
			r.FieldsPerRecord, r.ReuseRecord = -1, true
			for {
				if _, err := r.Read(); err == io.EOF {
					break
				}
			}
		}
	})
	b.Run("recordReader", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			r := newRecordReader(bufio.NewReaderSize(bytes.NewReader(data), readBufferSize), ',')
			for {
				if _, err := r.read(); err == io.EOF {
					break
				}
			}
		}
	})
}
