package main

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
)

// scrape reads /metrics and returns the value of each sample line, keyed
// by the line's name and labels as written.
func scrape(t *testing.T, d *testDaemon) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.Addrs.Admin.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// The counters move after an FTP upload that is sent, an upload that is
// rejected, and a failed login.
func TestMetricsMoveAfterUploadRejectionSendAndFailedLogin(t *testing.T) {
	d := startDaemon(t, testConfig(t, t.TempDir()))
	scrape(t, d) // the first scrape marks where file counting starts

	bad, err := jftp.Dial(d.Addrs.FTP.String(), jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Login("acme", "not-the-password"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	bad.Quit()

	fc := dialFTP(t, d)
	if err := fc.Stor("/inbox/good.csv", bytes.NewBufferString("email,message\r\nana@example.com,hello\r\n")); err != nil {
		t.Fatalf("FTP STOR: %v", err)
	}
	if err := fc.Stor("/inbox/bad.csv", bytes.NewBufferString("first_name\r\nAna\r\n")); err != nil {
		t.Fatalf("FTP STOR: %v", err)
	}
	want := []string{
		`dropgate_login_failures_total{protocol="ftp"}`,
		`dropgate_uploads_total{protocol="ftp"}`,
		`dropgate_files_total{protocol="ftp",reason="",status="queued"}`,
		`dropgate_rows_ingested_total`,
		`dropgate_messages_total{channel="email",outcome="sent"}`,
		`dropgate_delivery_latency_seconds_count{channel="email"}`,
		`dropgate_provider_response_seconds_count{channel="email",result="accepted"}`,
		`dropgate_ingest_duration_seconds_count`,
	}
	var m map[string]float64
	waitFor(t, 30*time.Second, "metrics to move", func() bool {
		m = scrape(t, d)
		for _, k := range want {
			if m[k] < 1 {
				return false
			}
		}
		rejected := 0.0
		for k, v := range m {
			if strings.HasPrefix(k, `dropgate_files_total{protocol="ftp",reason=`) && strings.Contains(k, `status="rejected"`) {
				rejected += v
			}
		}
		return rejected == 1 && m[`dropgate_uploads_total{protocol="ftp"}`] == 2 && m[`dropgate_upload_bytes_total{protocol="ftp"}`] > 0
	})
	if _, ok := m[`dropgate_queue_depth{channel="email"}`]; !ok {
		t.Errorf("no queue depth for the email channel")
	}
}
