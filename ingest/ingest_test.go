package ingest

import (
	"context"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

const welcomeSMS = "channel: sms\n---\nOla {{.first_name}}, a sua encomenda {{.order_id}} foi enviada.\n"

const shippedEmail = `channel: email
subject: Order {{.order_id}} has shipped
format: html
from: Acme <no-reply@acme.example>
---
<p>Hi {{.first_name | title}},</p>
<p>your order {{.order_id}} is on its way.</p>
`

func TestIngestStoresVarsOnlyForChannelsThatReadThem(t *testing.T) {
	e := newTestEnv(t, func(cfg *config.Config) {
		for i := range cfg.Channels {
			if cfg.Channels[i].Name == "sms" {
				cfg.Channels[i] = config.Channel{Name: "sms", Type: "http", URL: "http://127.0.0.1:1/send", Recipient: "phone",
					Body: `{"to": {{json .To}}, "text": {{json .Body}}, "name": {{json .Vars.first_name}}}`}
			}
		}
	})
	e.template("acme", "welcome", welcomeSMS)
	e.template("acme", "shipped", shippedEmail)
	e.ingest("acme", "inbox/welcome/w.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))
	e.ingest("acme", "inbox/shipped/s.csv", []byte("email,first_name,order_id\nana@example.com,Ana,A-1\n"))
	sms, email := e.messages(e.files("acme")[0].JobID), e.messages(e.files("acme")[1].JobID)
	if len(sms) != 1 || len(email) != 1 {
		t.Fatalf("got %d and %d messages, want 1 and 1", len(sms), len(email))
	}
	if want := map[string]string{"first_name": "Ana", "order_id": "A-1"}; !maps.Equal(sms[0].Vars, want) {
		t.Errorf("http channel reading .Vars: vars = %v, want %v", sms[0].Vars, want)
	}
	if email[0].Vars != nil {
		t.Errorf("outbox channel: vars = %v, want none stored", email[0].Vars)
	}
}

func TestIngestQueuesRenderedRowsAndArchivesFile(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "shipped", shippedEmail)
	e.ingest("acme", "inbox/shipped/orders.csv", []byte("email,first_name,order_id,ref\nana@example.com,ana maria,A-1,r1\nbob@example.org,Bob,A-2,r2\n"))

	f := e.lastFile("acme")
	if f.Status != store.FileQueued || f.RowsTotal != 2 || f.RowsBad != 0 {
		t.Fatalf("file = %+v, want queued with 2 rows", f)
	}
	msgs := e.messages(f.JobID)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	m := msgs[0]
	if m.Recipient != "ana@example.com" || m.Subject != "Order A-1 has shipped" || m.Format != "html" ||
		m.Body != "<p>Hi Ana Maria,</p>\n<p>your order A-1 is on its way.</p>" || m.Line != 2 || m.Ref != "r1" ||
		m.Sender != "Acme <no-reply@acme.example>" || m.Channel != "email" || m.Vars != nil {
		t.Errorf("first message = %+v", m)
	}
	if _, err := os.Stat(e.home("acme", "inbox/shipped/orders.csv")); !os.IsNotExist(err) {
		t.Errorf("original still in the inbox: %v", err)
	}
	if !strings.Contains(f.ArchivePath, "archive/acme/2026-03-01/orders.csv") {
		t.Errorf("archive path = %q", f.ArchivePath)
	}
	if _, err := os.Stat(f.ArchivePath); err != nil {
		t.Errorf("archived file: %v", err)
	}
	if r := e.readReport("acme", "orders.csv.errors.csv"); r != "" {
		t.Errorf("unexpected errors report:\n%s", r)
	}
}

func TestIngestRejectsRowMissingTemplateVariable(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/list.csv", []byte("phone,first_name\n912345678,Ana\n"))

	f := e.lastFile("acme")
	if f.Status != store.FileRejected {
		t.Fatalf("status = %s, want rejected", f.Status)
	}
	want := "line,column,value,error\n2,order_id,,\"the template \"\"welcome\"\" uses {{.order_id}}, but the file has no order_id column; add that column, or change the template\"\n"
	if got := e.readReport("acme", "list.csv.errors.csv"); got != want {
		t.Errorf("errors report:\n%s\nwant:\n%s", got, want)
	}
}

func TestIngestSkipRowsQueuesGoodRowsAndReportsBadOnes(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("legacy", "welcome", welcomeSMS)
	e.ingest("legacy", "inbox/welcome/list.csv", []byte("phone;first_name;order_id\n912345678;Ana;1\n+351 91;Bob;2\n+351912345679;Carla;3\n"))

	f := e.lastFile("legacy")
	if f.Status != store.FileQueued || f.RowsTotal != 3 || f.RowsBad != 1 {
		t.Fatalf("file = %+v, want queued, 3 rows, 1 bad", f)
	}
	msgs := e.messages(f.JobID)
	if len(msgs) != 2 || msgs[0].Recipient != "+351912345678" || msgs[1].Recipient != "+351912345679" || msgs[1].Line != 4 {
		t.Fatalf("messages = %+v", msgs)
	}
	if r := e.readReport("legacy", "list.csv.errors.csv"); !strings.Contains(r, "3,phone,+351 91,\"'+351 91' is not a valid phone number for region PT") {
		t.Errorf("errors report:\n%s", r)
	}
}

func TestIngestRejectFileQueuesNothingAndReportsEveryBadRow(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/list.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n+351 91,Bob,2\n12,Carla,3\n"))

	f := e.lastFile("acme")
	if f.Status != store.FileRejected || f.RowsBad != 2 {
		t.Fatalf("file = %+v, want rejected with 2 bad rows", f)
	}
	jobs, err := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("jobs = %v, %v; want none", jobs, err)
	}
	r := e.readReport("acme", "list.csv.errors.csv")
	if !strings.Contains(r, "\n3,phone,") || !strings.Contains(r, "\n4,phone,") {
		t.Errorf("errors report:\n%s", r)
	}
}

func TestIngestTemplateVersionsEachGoodUpload(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.template("acme", "welcome", welcomeSMS) // same bytes: no new version
	e.template("acme", "welcome", "channel: sms\n---\nHello {{.first_name}}\n")
	got, err := e.st.LatestTemplate(context.Background(), "acme", "welcome")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Body != "Hello {{.first_name}}" || got.Channel != "sms" {
		t.Errorf("latest = %+v, want version 2", got)
	}
	e.ingest("acme", "inbox/welcome/a.csv", []byte("phone,first_name\n912345678,Ana\n"))
	if m := e.messages(e.lastFile("acme").JobID); len(m) != 1 || m[0].Body != "Hello Ana" {
		t.Errorf("messages = %+v", m)
	}
}

func TestIngestBadTemplateIsReportedWithLineAndColumnAndKeepsPreviousVersion(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.template("acme", "welcome", "channel: sms\n---\nHello\nOla {{.first_name | env \"HOME\"}}\n")

	report := e.readReport("acme", "welcome.tmpl.errors.txt")
	if !strings.HasPrefix(report, "templates/welcome.tmpl, line 4, column 5: function \"env\" not defined") ||
		!strings.Contains(report, "Version 1 of this template") {
		t.Errorf("report:\n%s", report)
	}
	got, _ := e.st.LatestTemplate(context.Background(), "acme", "welcome")
	if got.Version != 1 {
		t.Errorf("latest version = %d, want 1 kept", got.Version)
	}
	e.template("acme", "welcome", "channel: sms\n---\nHi {{.first_name}}\n")
	if r := e.readReport("acme", "welcome.tmpl.errors.txt"); r != "" {
		t.Errorf("stale template report kept:\n%s", r)
	}
}

func TestIngestRejectsTemplateWithUnknownChannel(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("legacy", "promo", "channel: email\n---\nHi\n")
	if r := e.readReport("legacy", "promo.tmpl.errors.txt"); !strings.HasPrefix(r, "templates/promo.tmpl, line 1, column 10: channel \"email\" is not one of your channels (sms)") {
		t.Errorf("report:\n%s", r)
	}
}

func TestIngestLaterUploadReplacesReports(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) {})
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/list.csv", []byte("phone,first_name,order_id\nbad,Ana,1\n"))
	if e.readReport("acme", "list.csv.errors.csv") == "" {
		t.Fatal("no errors report for the bad upload")
	}
	e.ingest("acme", "inbox/welcome/list.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	if r := e.readReport("acme", "list.csv.errors.csv"); r != "" {
		t.Errorf("stale errors report kept:\n%s", r)
	}
	if f := e.lastFile("acme"); f.Status != store.FileQueued {
		t.Errorf("second upload status = %s", f.Status)
	}
}

func TestIngestRejectsRecordLongerThanMaxRowBytes(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) { c.Ingest.MaxRowBytes = 1024 })
	e.template("acme", "welcome", welcomeSMS)
	// An unclosed quote swallows the rest of a large file into one record.
	data := "phone,first_name,order_id\n912345678,Ana,1\n912345679,\"Bob,2\n" + strings.Repeat("912345670,Carla,3\n", 20_000)
	e.ingest("acme", "inbox/welcome/long.csv", []byte(data))

	f := e.lastFile("acme")
	if f.Status != store.FileRejected {
		t.Fatalf("status = %s, want rejected", f.Status)
	}
	r := e.readReport("acme", "long.csv.errors.csv")
	if !strings.Contains(r, "\n3,,,\"the row starting on line 3 is longer than 1024 bytes") {
		t.Errorf("errors report:\n%s", r)
	}
}

func TestIngestArchivesSameNameTwiceUnderUniqueNames(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/orders.csv", []byte("phone,first_name,order_id\n912345678,Ana,1\n"))
	e.ingest("acme", "inbox/welcome/orders.csv", []byte("phone,first_name,order_id\n912345679,Bob,2\n"))
	fs := e.files("acme")
	if len(fs) != 2 {
		t.Fatalf("files = %+v", fs)
	}
	if !strings.HasSuffix(fs[0].ArchivePath, "/2026-03-01/orders.csv") || !strings.HasSuffix(fs[1].ArchivePath, "/2026-03-01/orders-2.csv") {
		t.Errorf("archive paths = %q, %q", fs[0].ArchivePath, fs[1].ArchivePath)
	}
	for _, f := range fs {
		if _, err := os.Stat(f.ArchivePath); err != nil {
			t.Errorf("archived file: %v", err)
		}
	}
}

func TestChannelReadsVarsOnlyWhenAnHTTPTemplateNamesThem(t *testing.T) {
	for _, tc := range []struct {
		ch   config.Channel
		want bool
	}{
		{config.Channel{Type: "http", Body: `{"name": {{json .Vars.first_name}}}`}, true},
		{config.Channel{Type: "http", Headers: map[string]string{"X-Name": "{{.Vars.first_name}}"}}, true},
		{config.Channel{Type: "http"}, false}, // the default body: to, body, subject, id, ref
		{config.Channel{Type: "outbox"}, false},
		{config.Channel{Type: "smtp"}, false},
	} {
		if got := channelReadsVars(&tc.ch); got != tc.want {
			t.Errorf("channelReadsVars(%+v) = %v, want %v", tc.ch, got, tc.want)
		}
	}
}
