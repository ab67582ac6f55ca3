package ingest

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ingest")

const goldenDir = "../testdata/ingest"

// goldenCase is one input file of testdata/ingest/{bad,good}.
type goldenCase struct {
	file    string
	partner string // default acme
	folder  string // inbox subfolder (the template); "-" for inbox/ itself; default welcome
	twice   bool   // ingest the same bytes twice and check the second
}

func (c goldenCase) rel() string {
	folder := c.folder
	switch folder {
	case "":
		folder = "welcome"
	case "-":
		return "inbox/" + c.file
	}
	return "inbox/" + folder + "/" + c.file
}

func (c goldenCase) partnerName() string {
	if c.partner == "" {
		return "acme"
	}
	return c.partner
}

// goldenEnv is a test env with the testdata templates uploaded.
func goldenEnv(t *testing.T) *testEnv {
	e := newTestEnv(t, nil)
	for _, name := range []string{"welcome", "shipped", "reminder"} {
		src, err := os.ReadFile(filepath.Join(goldenDir, "templates", name+".tmpl"))
		if err != nil {
			t.Fatal(err)
		}
		e.template("acme", name, string(src))
		if r := e.readReport("acme", name+".tmpl.errors.txt"); r != "" {
			t.Fatalf("testdata template %s: %s", name, r)
		}
		if name == "welcome" {
			e.template("legacy", name, string(src))
		}
	}
	return e
}

// checkGolden compares got with the golden file, or rewrites it (-update).
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ingest -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", filepath.Base(path), got, want)
	}
}

func TestGoldenBadFilesReportErrors(t *testing.T) {
	cases := []goldenCase{
		{file: "missing-header.csv"},
		{file: "unknown-template.csv", folder: "nosuch"},
		{file: "missing-variable.csv"},
		{file: "bad-email.csv", folder: "shipped"},
		{file: "bad-phone.csv"},
		{file: "ragged-row.csv"},
		{file: "invalid-utf8.csv"},
		{file: "empty.csv"},
		{file: "header-only.csv"},
		{file: "duplicate.csv", twice: true},
		{file: "unclosed-quote.csv"},
		{file: "bare-quote.csv"},
		{file: "bad-send-at.csv"},
		{file: "unknown-row-template.csv", folder: "-"},
		{file: "several-problems.csv"},
		{file: "orders.xlsx", folder: "-"},
		{file: "no-template.csv", folder: "-"},
		{file: "no-recipient-column.csv"},
		{file: "batch-with-bad-row.zip"},
		{file: "spreadsheet-named-csv.csv"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			e := goldenEnv(t)
			data, err := os.ReadFile(filepath.Join(goldenDir, "bad", c.file))
			if err != nil {
				t.Fatal(err)
			}
			p := c.partnerName()
			e.ingest(p, c.rel(), data)
			if c.twice {
				e.ingest(p, c.rel(), data)
			}
			f := e.lastFile(p)
			if f.Status != store.FileRejected {
				t.Errorf("status = %s, want rejected", f.Status)
			}
			if f.ArchivePath == "" {
				t.Error("rejected file not archived")
			}
			stored, err := e.st.FileErrors(context.Background(), f.ID, 1000)
			if err != nil || len(stored) == 0 {
				t.Errorf("stored errors = %v, %v; want some", stored, err)
			}
			if c.twice {
				if first := e.files(p)[0]; first.Status != store.FileQueued {
					t.Errorf("first upload status = %s, want queued", first.Status)
				}
			} else if jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: p}); len(jobs) != 0 {
				t.Errorf("jobs = %+v, want none for a rejected file", jobs)
			}
			checkGolden(t, filepath.Join(goldenDir, "bad", c.file+".errors.csv"), e.readReport(p, c.file+".errors.csv"))
		})
	}
}

func TestGoldenAwkwardButGoodFilesQueueMessages(t *testing.T) {
	cases := []goldenCase{
		{file: "bom.csv"},
		{file: "semicolons.csv"},
		{file: "crlf.csv"},
		{file: "quoted-newlines.csv"},
		{file: "windows-1252.csv", partner: "legacy"},
		{file: "pipes-and-header-case.csv"},
		{file: "tabs.csv"},
		{file: "orders.csv.gz"},
		{file: "batch.zip"},
		{file: "literal-messages.csv", folder: "-"},
		{file: "literal-with-channel.csv", folder: "-"},
		{file: "row-templates-and-send-at.csv", folder: "-"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			e := goldenEnv(t)
			data, err := os.ReadFile(filepath.Join(goldenDir, "good", c.file))
			if err != nil {
				t.Fatal(err)
			}
			p := c.partnerName()
			e.ingest(p, c.rel(), data)
			f := e.lastFile(p)
			if f.Status != store.FileQueued || f.RowsBad != 0 {
				t.Fatalf("file = %+v, want queued with no bad rows; errors report:\n%s", f, e.readReport(p, c.file+".errors.csv"))
			}
			got := dumpMessages(e.messages(f.JobID))
			if strings.Count(got, "\n") != f.RowsTotal {
				t.Errorf("%d messages for %d rows", strings.Count(got, "\n"), f.RowsTotal)
			}
			checkGolden(t, filepath.Join(goldenDir, "good", c.file+".messages.jsonl"), got)
		})
	}
}
