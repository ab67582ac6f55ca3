package ingest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

func TestCSVReaderReportsWhereATooLongRecordStarts(t *testing.T) {
	const maxRow = 256
	long := strings.Repeat("x", maxRow+2*readBufferSize)
	cases := []struct {
		name, data string
		line       int
		header     bool
		want       string
	}{
		{name: "header", data: "phone," + long + "\n912345678,a\n", line: 1, header: true,
			want: "the header (line 1) is longer than 256 bytes, the most one line may have"},
		{name: "first row", data: "phone,note\n912345678," + long + "\n", line: 2,
			want: "the row starting on line 2 is longer than 256 bytes, the most one row may have"},
		{name: "after a quoted value over three lines", data: "phone,note\n912345678,\"a\nb\nc\"\n912345679," + long + "\n", line: 5},
		{name: "after a CRLF row", data: "phone,note\r\n912345678,a\r\n912345679," + long + "\r\n", line: 3},
		{name: "after a bad quote", data: "phone,note\n912345678,a\"b\n912345679," + long + "\n", line: 3},
		{name: "an unclosed quote", data: "phone,note\n912345678,a\n912345679,\"" + long + "\n", line: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			cr, err := newCSVReader(strings.NewReader(c.data), "utf-8", maxRow)
			for err == nil {
				_, _, err = cr.read()
				if _, ok := err.(*csv.ParseError); ok {
					err = nil // a row's parse error: reading goes on
				}
			}
			var tooLong *recordTooLongError
			if !errors.As(err, &tooLong) {
				t.Fatalf("err = %v, want a recordTooLongError", err)
			}
			if tooLong.Line != c.line || tooLong.Limit != maxRow || tooLong.Header != c.header {
				t.Errorf("got line %d, limit %d, header %v; want line %d, limit %d, header %v", tooLong.Line, tooLong.Limit, tooLong.Header, c.line, maxRow, c.header)
			}
			if c.want != "" && tooLong.Error() != c.want {
				t.Errorf("message %q, want %q", tooLong.Error(), c.want)
			}
		})
	}
}

// logRecorder collects the ingester's log lines.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// recordLogs sends e's ingest log to a recorder.
func recordLogs(e *testEnv) *logRecorder {
	rec := &logRecorder{}
	e.in.log = slog.New(slog.NewTextHandler(rec, nil)).With("component", "ingest")
	return rec
}

func TestIngestTellsThePartnerABinaryUploadIsNotCSV(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	logs := recordLogs(e)
	// What a spreadsheet saved under a .csv name starts with.
	data := []byte("PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00b\xee\x9dh^\x01\x00\x00\x90\x04\x00\x00\x13\x00\x08\x02[Content_Types].xml \xa2\x04\x02(\xa0\x00\x02\"\x00\x00\n\x00\x01")
	e.ingest("acme", "inbox/welcome/orders.csv", data)

	f := e.lastFile("acme")
	if f.Status != store.FileRejected {
		t.Fatalf("status = %s, want rejected", f.Status)
	}
	r := e.readReport("acme", "orders.csv.errors.csv")
	if !strings.Contains(r, "\n1,,,\"line 1, column 58: this does not look like a CSV file (a quote inside an unquoted field)") || strings.Contains(r, "internal") {
		t.Errorf("errors report:\n%s", r)
	}
	if l := logs.String(); strings.Contains(l, "level=ERROR") || !strings.Contains(l, "level=INFO msg=\"file rejected\"") {
		t.Errorf("log:\n%s\nwant the rejection at INFO and no ERROR", l)
	}
}

func TestIngestStillCallsItsOwnFailuresInternal(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	logs := recordLogs(e)
	// The disk fails the read: not the partner's doing, and nothing the
	// partner can fix in the file.
	e.in.ingesting = func(_ context.Context, it workItem) error {
		return &os.PathError{Op: "read", Path: e.home(it.partner, it.rel), Err: syscall.EIO}
	}
	e.ingest("acme", "inbox/welcome/orders.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))

	if r := e.readReport("acme", "orders.csv.errors.csv"); !strings.Contains(r, "dropgate could not read this file because of an internal problem") {
		t.Errorf("errors report:\n%s", r)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR msg=\"cannot read file\"") {
		t.Errorf("log:\n%s\nwant the failure at ERROR", l)
	}
	if jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"}); len(jobs) != 0 {
		t.Errorf("jobs = %+v, want none", jobs)
	}
}

func TestIngestRejectsAFileWithMoreRowsThanMaxRows(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].MaxRows = 3 })
	e.template("acme", "welcome", welcomeSMS)
	row := "912345678,Ana,A-1\n"
	e.ingest("acme", "inbox/welcome/ok.csv", []byte("phone,first_name,order_id\n"+strings.Repeat(row, 3)))
	if f := e.lastFile("acme"); f.Status != store.FileQueued || f.RowsTotal != 3 {
		t.Fatalf("3 rows: file = %+v, want queued", f)
	}
	e.ingest("acme", "inbox/welcome/big.csv", []byte("phone,first_name,order_id\n"+strings.Repeat(row, 3)+"912345679,Rui,A-2\n"))
	f := e.lastFile("acme")
	if f.Status != store.FileRejected {
		t.Fatalf("4 rows: status = %s, want rejected", f.Status)
	}
	const want = "the file has more than 3 rows, the most one file may have, so nothing was queued"
	if r := e.readReport("acme", "big.csv.errors.csv"); !strings.Contains(r, "\n0,,,\""+want) {
		t.Errorf("errors report:\n%s", r)
	}
	// What GET /api/v1/files shows.
	if !strings.HasPrefix(f.Error, want) {
		t.Errorf("file error = %q", f.Error)
	}
	if jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"}); len(jobs) != 1 {
		t.Errorf("jobs = %d, want only the first file's", len(jobs))
	}
}

func TestIngestRejectsACompressedFileThatExpandsPastTheLimit(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Partners[0].MaxExpandedBytes = 100 << 10 })
	e.template("acme", "welcome", welcomeSMS)
	// 400 KB of rows in a few KB of gzip; far fewer rows than max_rows.
	row := "912345678,Ana,A-1\n"
	plain := "phone,first_name,order_id\n" + strings.Repeat(row, (400<<10)/len(row))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(plain))
	zw.Close()
	var zbuf bytes.Buffer
	zz := zip.NewWriter(&zbuf)
	for _, name := range []string{"a.csv", "b.csv"} { // 60 KB each: too much only together
		w, _ := zz.Create(name)
		w.Write([]byte("phone,first_name,order_id\n" + strings.Repeat(row, (60<<10)/len(row))))
	}
	zz.Close()

	const want = "the file expands to more than 102400 bytes when decompressed, the most one file may hold, so nothing was queued"
	for name, data := range map[string][]byte{"bomb.csv.gz": gz.Bytes(), "bomb.zip": zbuf.Bytes()} {
		e.ingest("acme", "inbox/welcome/"+name, data)
		f := e.lastFile("acme")
		if f.Status != store.FileRejected {
			t.Fatalf("%s: status = %s, want rejected", name, f.Status)
		}
		if r := e.readReport("acme", name+".errors.csv"); !strings.HasPrefix(r, "line,column,value,error\n0,") || !strings.Contains(r, want) {
			t.Errorf("%s: errors report:\n%s", name, r)
		}
	}
}

func TestIngestThatCannotRemoveAStaleReportLeavesNoIngestingJob(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	// A stale result report that cannot be removed: a folder with a file in it.
	e.write("acme", "reports/orders.csv.result.csv/keep", []byte("x"))
	e.ingest("acme", "inbox/welcome/orders.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))

	ctx := context.Background()
	jobs, err := e.st.ListJobs(ctx, store.JobFilter{Partner: "acme"})
	if err != nil || len(jobs) != 0 {
		t.Errorf("jobs = %+v, %v; want none left behind", jobs, err)
	}
	if fs := e.files("acme"); len(fs) != 0 {
		t.Errorf("files = %+v; want no record left \"received\"", fs)
	}
	if _, err := os.Stat(e.home("acme", "inbox/welcome/orders.csv")); err != nil {
		t.Errorf("the file left the inbox: %v; want it kept for another try", err)
	}
	// The store is free again: the same file goes through once the
	// report can be replaced.
	os.RemoveAll(e.home("acme", "reports/orders.csv.result.csv"))
	e.in.process(ctx, workItem{partner: "acme", rel: "inbox/welcome/orders.csv"})
	if f := e.lastFile("acme"); f.Status != store.FileQueued {
		t.Errorf("second try: file = %+v, want queued", f)
	}
}
