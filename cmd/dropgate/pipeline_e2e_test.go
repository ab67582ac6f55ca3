package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
)

const shippedTemplate = `channel: email
subject: Order {{.order_id}} has shipped
---
Hi {{.first_name}}, your order {{.order_id}} is on its way.
`

const smsTemplate = `channel: sms
---
Hi {{.first_name}}, order {{.order_id}} ships today.
`

type apiJob struct {
	ID       int64          `json:"id"`
	Status   string         `json:"status"`
	Source   string         `json:"source"`
	FileName string         `json:"file_name"`
	Total    int            `json:"total"`
	Counts   map[string]int `json:"counts"`
}

// jobFor waits until the file (path in the home) has a job and returns it.
func (d *testDaemon) jobFor(t *testing.T, fileName, status string) apiJob {
	t.Helper()
	var found apiJob
	waitFor(t, 20*time.Second, fmt.Sprintf("job for %s to be %s", fileName, status), func() bool {
		var resp struct{ Jobs []apiJob }
		d.API(t, "GET", "/api/v1/jobs", &resp)
		for _, j := range resp.Jobs {
			if j.FileName == fileName && j.Status == status {
				found = j
				return true
			}
		}
		return false
	})
	return found
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

func TestServeDeliversDroppedCSVEndToEnd(t *testing.T) {
	d := startDaemon(t, testConfig(t, t.TempDir()))
	home := d.Home("acme")

	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), shippedTemplate)
	renameInto(t, filepath.Join(home, "templates", "sms_ship.tmpl"), smsTemplate)
	d.waitTemplates(t, 2)

	// Written in place: taken after the quiet period.
	writeFile(t, filepath.Join(home, "inbox", "shipped", "orders.csv"),
		"email,first_name,order_id,ref\nana@example.com,Ana,A-1,r1\nrui@example.com,Rui,A-2,r2\n")
	// Renamed into place, with the template named per row and a phone to normalise.
	renameInto(t, filepath.Join(home, "inbox", "sms.csv"),
		"phone;first_name;order_id;template\n912 345 678;Zé;B-7;sms_ship\n")

	emailJob := d.jobFor(t, "inbox/shipped/orders.csv", "done")
	smsJob := d.jobFor(t, "inbox/sms.csv", "done")
	if emailJob.Total != 2 || emailJob.Counts["sent"] != 2 {
		t.Errorf("email job = %+v, want 2 sent", emailJob)
	}
	if smsJob.Total != 1 || smsJob.Counts["sent"] != 1 {
		t.Errorf("sms job = %+v, want 1 sent", smsJob)
	}

	emails := d.OutboxLines(t, "email")
	if len(emails) != 2 {
		t.Fatalf("email outbox has %d lines, want 2: %v", len(emails), emails)
	}
	got := map[string]map[string]any{}
	for _, m := range emails {
		got[m["to"].(string)] = m
	}
	if m := got["ana@example.com"]; m == nil || m["subject"] != "Order A-1 has shipped" ||
		m["body"] != "Hi Ana, your order A-1 is on its way." || m["ref"] != "r1" || m["partner"] != "acme" {
		t.Errorf("ana's email = %v", m)
	}
	sms := d.OutboxLines(t, "sms")
	if len(sms) != 1 || sms[0]["to"] != "+351912345678" || sms[0]["body"] != "Hi Zé, order B-7 ships today." {
		t.Errorf("sms outbox = %v", sms)
	}

	// The partner's answer, in reports/, once the job ended.
	report := filepath.Join(home, "reports", "orders.csv.result.csv")
	waitFor(t, 10*time.Second, "result report", func() bool { _, err := os.Stat(report); return err == nil })
	rows := readCSV(t, report)
	if strings.Join(rows[0], ",") != "line,ref,recipient,status,provider_id,error,sent_at" || len(rows) != 3 {
		t.Fatalf("result report = %v", rows)
	}
	for _, r := range rows[1:] {
		if r[3] != "sent" || r[6] == "" {
			t.Errorf("report row %v: want sent with a time", r)
		}
	}
	// The original leaves the home for the archive. Ingest moves it after
	// queueing the job, so on a busy machine the job can be delivered and
	// reported first: wait for the move rather than race it.
	var archived []string
	waitFor(t, 10*time.Second, "the original to move to the archive", func() bool {
		_, err := os.Stat(filepath.Join(home, "inbox", "shipped", "orders.csv"))
		archived, _ = filepath.Glob(filepath.Join(d.Cfg.ArchiveDir(), "acme", "*", "orders.csv*"))
		return os.IsNotExist(err) && len(archived) > 0
	})
	if len(archived) != 1 {
		t.Errorf("archive has %v, want the original", archived)
	}
}

func TestServeReportsRejectedFileToPartnerAndAPI(t *testing.T) {
	d := startDaemon(t, testConfig(t, t.TempDir()))
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "inbox", "bad.csv"), "phone,message\n+351 91,hello\n")

	errReport := filepath.Join(home, "reports", "bad.csv.errors.csv")
	waitFor(t, 10*time.Second, "errors report", func() bool { _, err := os.Stat(errReport); return err == nil })
	rows := readCSV(t, errReport)
	if len(rows) != 2 || rows[1][0] != "2" || rows[1][1] != "phone" || !strings.Contains(rows[1][3], "not a valid phone number") {
		t.Errorf("errors report = %v", rows)
	}
	var resp struct {
		Files []struct {
			Name, Status string
			Errors       []struct {
				Line   int
				Column string
				Error  string
			}
		}
	}
	if code := d.API(t, "GET", "/api/v1/files?status=rejected", &resp); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(resp.Files) != 1 || resp.Files[0].Name != "inbox/bad.csv" || len(resp.Files[0].Errors) != 1 || resp.Files[0].Errors[0].Column != "phone" {
		t.Errorf("rejected files = %+v", resp.Files)
	}
	if len(d.OutboxLines(t, "sms")) != 0 {
		t.Error("a rejected file sent something")
	}
}

func TestServeRestartDeliversEveryMessageExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	slow := func() *config.Config {
		cfg := testConfig(t, dir)
		cfg.SFTP.Listen, cfg.FTP.Listen = "", ""
		for i := range cfg.Channels {
			cfg.Channels[i].Rate, cfg.Channels[i].Burst = 100, 1 // about 2s for the whole file
		}
		return cfg
	}
	d := startDaemon(t, slow())
	var b strings.Builder
	b.WriteString("phone,message,ref\n")
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, "+3519123%05d,hello %d,r%d\n", i, i, i)
	}
	renameInto(t, filepath.Join(d.Home("acme"), "inbox", "many.csv"), b.String())
	waitFor(t, 20*time.Second, "some messages sent", func() bool { return len(d.OutboxLines(t, "sms")) >= 20 })
	if err := d.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	before := len(d.OutboxLines(t, "sms"))
	if before >= n {
		t.Skipf("all %d messages went out before the stop; nothing to resume", n)
	}

	d2 := startDaemon(t, slow())
	d2.jobFor(t, "inbox/many.csv", "done")
	seen := map[string]int{}
	for _, m := range d2.OutboxLines(t, "sms") {
		seen[m["ref"].(string)]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("r%d", i)]; c != 1 {
			t.Errorf("message r%d delivered %d times, want exactly once", i, c)
		}
	}
	t.Logf("%d of %d sent before the stop, the rest after the restart", before, n)
}
