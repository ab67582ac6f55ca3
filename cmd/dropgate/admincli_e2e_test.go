package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cli runs a dropgate admin command in-process against d.
func cli(t *testing.T, d *testDaemon, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--addr", d.Addrs.Admin.String())
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Logf("dropgate %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), err
}

// The admin CLI against a real daemon: send, then jobs ID --json shows it
// sent; --follow ends at 100%; the tables list jobs and rejected files;
// cancel cancels.
func TestAdminCLIAgainstARunningDaemon(t *testing.T) {
	d := startAPIDaemon(t)
	env := map[string]string{"DROPGATE_TOKEN": testAdminToken}

	out, err := cli(t, d, env, "send", "--partner", "acme", "--template", "shipped", "--to", "ana@example.com",
		"--var", "first_name=Ana", "--var", "order_id=A-1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		JobID int64 `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.JobID == 0 {
		t.Fatalf("send --json: %v in %q", err, out)
	}
	id := strconv.FormatInt(sent.JobID, 10)
	waitFor(t, 20*time.Second, "jobs ID --json to show the message sent", func() bool {
		out, err := cli(t, d, env, "jobs", id, "--json")
		var j struct {
			Counts map[string]int
		}
		return err == nil && json.Unmarshal([]byte(out), &j) == nil && j.Counts["sent"] == 1
	})
	if out, err := cli(t, d, env, "jobs", id, "--follow", "--interval", "50ms"); err != nil || !strings.Contains(out, "100%") || !strings.Contains(out, "[##############################]") {
		t.Fatalf("--follow: %v\n%s", err, out)
	}
	if out, _ := cli(t, d, nil, "jobs", "--token", testAdminToken); !strings.Contains(out, "PROGRESS") || !strings.Contains(out, "\n"+id+" ") {
		t.Fatalf("jobs table:\n%s", out)
	}
	if _, err := cli(t, d, map[string]string{"DROPGATE_TOKEN": "wrong-token-wrong-token"}, "jobs"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a wrong token: %v", err)
	}

	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "inbox", "broken.csv"), "email,first_name,order_id,template\r\nnot-an-address,Ana,A-1,shipped\r\n")
	later := time.Now().AddDate(1, 0, 0).Format("2006-01-02 15:04")
	renameInto(t, filepath.Join(home, "inbox", "later.csv"), "email,first_name,order_id,template,send_at\r\ncid@example.com,Cid,C-3,shipped,"+later+"\r\n")
	waitFor(t, 20*time.Second, "the rejected file in files --rejected", func() bool {
		out, _ := cli(t, d, env, "files", "--rejected")
		return strings.Contains(out, "inbox/broken.csv") && strings.Contains(out, "not-an-address")
	})
	var laterID string
	waitFor(t, 20*time.Second, "the later job", func() bool {
		out, _ := cli(t, d, env, "jobs", "--status", "queued")
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "later.csv") {
				laterID = strings.Fields(line)[0]
				return true
			}
		}
		return false
	})
	if out, err := cli(t, d, env, "cancel", laterID); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %v %s", err, out)
	}
	if out, err := cli(t, d, env, "retry", id); err != nil || !strings.Contains(out, "job "+id) {
		t.Fatalf("retry of a job with nothing failed: %v %s", err, out)
	}
}

// With [admin] tls = "self-signed", the CLI pointed at the daemon's data
// directory trusts the generated certificate and talks HTTPS.
func TestAdminCLIOverHTTPSWithTheGeneratedCertificate(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Admin.TLS = "self-signed"
	d := startDaemon(t, cfg)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"jobs", "--addr", "https://" + d.Addrs.Admin.String(), "--data", cfg.DataDir, "--token", testAdminToken},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if err != nil || !strings.Contains(out.String(), "PROGRESS") {
		t.Fatalf("jobs over HTTPS: %v\n%s%s", err, out.String(), errOut.String())
	}
}
