package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// smallDataDir mounts a tmpfs of sizeMB megabytes as a fresh data folder,
// so the daemon meets a real full disk. It needs root (CI runs as root);
// elsewhere the test is skipped, and under CI=true it fails. The
// watermark's own logic is tested with an injected free-space function in
// package diskspace.
func smallDataDir(t *testing.T, sizeMB int) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the full-disk tests need root to mount a tmpfs, and CI runs as root")
		}
		t.Skip("not root: cannot mount a small tmpfs for the data folder")
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	// Registered after TempDir's cleanup, so it runs first.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// freeBytes is the free space of the filesystem holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fillDisk writes a filler file in dir until only leave bytes are free
// (leave 0: until the disk is full) and returns its path.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		free := freeBytes(t, dir)
		if free <= leave {
			break
		}
		n := min(int64(len(chunk)), free-leave)
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	return path
}

// integrityOK checks the stopped daemon's SQLite database (PostgreSQL's
// files are not in the data folder the test fills).
func integrityOK(t *testing.T, dbPath string) {
	t.Helper()
	if storetest.OnPostgres() {
		return
	}
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check = %q, %v", res, err)
	}
}

// get fetches a path of the admin API without a token.
func (d *testDaemon) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.Addrs.Admin.String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ftpCommand logs in over a raw control connection and sends one command,
// returning the reply (for commands the Go client has no method for).
func ftpCommand(t *testing.T, d *testDaemon, cmd string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", d.Addrs.FTP.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"USER acme", "PASS " + testPassword} {
		if _, err := tp.Cmd("%s", c); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tp.ReadResponse(0); err != nil {
			t.Fatalf("%s: %v", strings.Fields(c)[0], err)
		}
	}
	if _, err := tp.Cmd("%s", cmd); err != nil {
		t.Fatal(err)
	}
	code, msg, _ := tp.ReadResponse(0)
	return code, msg
}

func TestUploadsAndSendsRefusedBelowStorageWatermarkThenResume(t *testing.T) {
	dir := smallDataDir(t, 64)
	cfg := testConfig(t, dir)
	cfg.Storage.MinFree = "40MiB"
	cfg.Partners[0].APIKey = acmeAPIKey
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), shippedTemplate)
	d.waitTemplates(t, 1)
	if err := os.Mkdir(filepath.Join(home, "inbox", "shipped"), 0o750); err != nil {
		t.Fatal(err)
	}
	if code, body := d.get(t, "/readyz"); code != 200 {
		t.Fatalf("readyz before = %d %s", code, body)
	}

	filler := fillDisk(t, dir, 30<<20) // 30 MiB free: below the 40 MiB watermark
	waitFor(t, 10*time.Second, "readyz to turn unready", func() bool {
		code, body := d.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "out of storage space")
	})
	_, metrics := d.get(t, "/metrics")
	if !strings.Contains(metrics, "dropgate_storage_low 1") {
		t.Errorf("metrics lack dropgate_storage_low 1")
	}

	// FTP: 552 with the reason, before any byte.
	fc := dialFTP(t, d)
	err := fc.Stor("inbox/shipped/ftp.csv", strings.NewReader("email,first_name,order_id\na@example.com,A,1\n"))
	if err == nil || !strings.Contains(err.Error(), "552") || !strings.Contains(err.Error(), "out of storage space") {
		t.Errorf("FTP STOR below the watermark: %v, want 552 out of storage space", err)
	}
	// SFTP: a failure status whose message says so.
	_, sc := dialSFTP(t, d)
	if _, err := sc.Create("/inbox/shipped/sftp.csv"); err == nil || !strings.Contains(err.Error(), "out of storage space") {
		t.Errorf("SFTP create below the watermark: %v, want out of storage space", err)
	}
	// API: 507 with Retry-After.
	res := d.postJSON(t, testAdminToken, "", "/api/v1/messages",
		`{"partner":"acme","template":"shipped","to":"api@example.com","vars":{"first_name":"Ana","order_id":"A-1"}}`)
	if res.Status != http.StatusInsufficientStorage || res.Header.Get("Retry-After") == "" || !strings.Contains(res.raw, "insufficient_storage") {
		t.Errorf("API send below the watermark = %d %v %s", res.Status, res.Header, res.raw)
	}
	// A file dropped in place waits in the inbox.
	dropped := filepath.Join(home, "inbox", "shipped", "waits.csv")
	writeFile(t, dropped, "email,first_name,order_id\nw@example.com,W,9\n")
	time.Sleep(3 * cfg.Ingest.QuietPeriod.D()) // lets a wrong ingest happen; the asserts below hold either way
	if _, err := os.Stat(dropped); err != nil {
		t.Errorf("a file dropped below the watermark was taken: %v", err)
	}
	var jobs struct{ Jobs []apiJob }
	d.API(t, "GET", "/api/v1/jobs", &jobs)
	if len(jobs.Jobs) != 0 {
		t.Errorf("jobs below the watermark: %+v", jobs.Jobs)
	}

	// Space returns: ready again, the waiting file is taken, uploads work.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "readyz to turn ready", func() bool { code, _ := d.get(t, "/readyz"); return code == 200 })
	d.jobFor(t, "inbox/shipped/waits.csv", "done")
	if err := fc.Stor("inbox/shipped/ftp.csv", strings.NewReader("email,first_name,order_id\na@example.com,A,1\n")); err != nil {
		t.Errorf("FTP STOR after space returned: %v", err)
	}
	d.jobFor(t, "inbox/shipped/ftp.csv", "done")
	sftpPut(t, sc, "/inbox/shipped/sftp.csv", "email,first_name,order_id\ns@example.com,S,2\n")
	d.jobFor(t, "inbox/shipped/sftp.csv", "done")

	// ALLO: an upload announced larger than the room left is refused first.
	if code, msg := ftpCommand(t, d, "ALLO 100000000"); code < 500 || !strings.Contains(msg, "storage") {
		t.Errorf("ALLO beyond the room left = %d %q", code, msg)
	}
	if code, msg := ftpCommand(t, d, "ALLO 1000"); code != 200 {
		t.Errorf("ALLO 1000 = %d %q", code, msg)
	}
	// SFTP: writes beyond the room left fail with the reason.
	f, err := sc.Create("/inbox/shipped/big.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.Write(make([]byte, 30<<20))
	f.Close()
	if werr == nil || !strings.Contains(werr.Error(), "storage space") {
		t.Errorf("SFTP write beyond the room left: %v", werr)
	}
	// FTP: curl's STOR beyond the room left ends with the server's 552 and
	// its reason, not a bare reset (the 80 MB upload).
	big := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(big, make([]byte, 30<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(requireClient(t, "curl"), "-sS", "-v", "-T", big,
		fmt.Sprintf("ftp://acme:%s@%s/inbox/shipped/big.csv", testPassword, d.Addrs.FTP)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "552") || !strings.Contains(string(out), "storage space") {
		t.Errorf("curl FTP upload beyond the room left: %v\n%s", err, lastLines(string(out), 8))
	} else {
		t.Logf("curl: %s", lastLines(string(out), 6))
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	integrityOK(t, cfg.DBPath())
}

// bigRecipientCSV is a CSV of n rows whose messages take far more room in
// the database than the file does.
func bigRecipientCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,first_name,order_id\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d@example.com,Name%d,O-%d\n", i, i, i)
	}
	return b.String()
}

const longTemplate = `channel: email
subject: Order {{.order_id}} has shipped
---
Hi {{.first_name}}, your order {{.order_id}} is on its way. It left our warehouse this morning and
should reach you within two working days. Track it at https://track.example.com/{{.order_id}} .
Thank you for shopping with us, {{.first_name}}; reply to this message if anything is wrong.
`

func TestIngestThatFillsTheDiskPausesAndResumesWhenSpaceReturns(t *testing.T) {
	if storetest.OnPostgres() {
		t.Skip("SQLite only: on PostgreSQL the messages are not written to the data folder, so an ingest cannot fill it")
	}
	// Room, once the filler is gone, for the file's messages and WAL with
	// the watermark above them (readyz at the end).
	dir := smallDataDir(t, 128)
	cfg := testConfig(t, dir)
	// The watermark must leave room to roll back what was written before
	// the read stopped (the deletes go through the WAL too, and the
	// checkpoint grows the database by as much): on a quiet machine ingest
	// writes several MiB between two checks, on a busy one (CI, its other
	// packages' tests beside) it wrote 15 MiB, 3 past the watermark, and
	// the rollback filled the disk. 4 MiB above the watermark and 24 below
	// it leave room for a check 10 MiB late.
	cfg.Storage.MinFree = "24MiB"
	cfg.Ingest.BatchSize = 1000
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), longTemplate)
	d.waitTemplates(t, 1)

	const rows = 60000
	csvData := bigRecipientCSV(rows)
	// Room for the file and the watermark, not for its ~25 MB of messages.
	filler := fillDisk(t, dir, int64(len(csvData))+28<<20)
	renameInto(t, filepath.Join(home, "inbox", "shipped", "big.csv"), csvData)

	waiting := filepath.Join(home, "reports", "big.csv.waiting.txt")
	waitFor(t, 60*time.Second, "the waiting report", func() bool { _, err := os.Stat(waiting); return err == nil })
	report, _ := os.ReadFile(waiting)
	if !strings.Contains(string(report), "out of storage space") || !strings.Contains(string(report), "taken automatically") {
		t.Errorf("waiting report = %q", report)
	}
	if _, err := os.Stat(filepath.Join(home, "inbox", "shipped", "big.csv")); err != nil {
		t.Errorf("the paused file left the inbox: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "reports", "big.csv.errors.csv")); err == nil {
		t.Errorf("the paused file has an errors report")
	}
	var jobs struct{ Jobs []apiJob }
	d.API(t, "GET", "/api/v1/jobs", &jobs)
	if len(jobs.Jobs) != 0 {
		t.Errorf("jobs while paused (the partial job must be gone): %+v", jobs.Jobs)
	}
	var files struct{ Files []map[string]any }
	d.API(t, "GET", "/api/v1/files?status=rejected", &files)
	if len(files.Files) != 0 {
		t.Errorf("rejected files while paused: %v", files.Files)
	}
	if code, body := d.get(t, "/readyz"); code != 503 {
		t.Errorf("readyz while paused = %d %s", code, body)
	}

	// Space returns, no restart: the file is read once and sent.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// 60,000 deliveries to the outbox: generous on a busy machine.
	waitFor(t, 180*time.Second, "the paused file's job to be done", func() bool {
		d.API(t, "GET", "/api/v1/jobs", &jobs)
		return len(jobs.Jobs) > 0 && jobs.Jobs[0].Status == "done"
	})
	if job := jobs.Jobs[0]; len(jobs.Jobs) != 1 || job.FileName != "inbox/shipped/big.csv" || job.Total != rows || job.Counts["sent"] != rows {
		t.Errorf("jobs after space returned = %+v, want one job of %d sent", jobs.Jobs, rows)
	}
	if n := len(d.OutboxLines(t, "email")); n != rows {
		t.Errorf("outbox has %d messages, want %d (each once)", n, rows)
	}
	waitFor(t, 20*time.Second, "result report", func() bool {
		_, err := os.Stat(filepath.Join(home, "reports", "big.csv.result.csv"))
		return err == nil
	})
	if _, err := os.Stat(waiting); err == nil {
		t.Errorf("the waiting report outlived the ingest")
	}
	waitFor(t, 10*time.Second, "readyz to turn ready", func() bool { code, _ := d.get(t, "/readyz"); return code == 200 })
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	integrityOK(t, cfg.DBPath())
}

func TestRestartWithFullDiskStartsDegradedAndBecomesReady(t *testing.T) {
	if storetest.OnPostgres() {
		t.Skip("SQLite only: a full data folder under the database file (and its WAL) at start; PostgreSQL's files are elsewhere")
	}
	dir := smallDataDir(t, 64)
	cfg := testConfig(t, dir)
	d := startDaemon(t, cfg) // first start: keys, certificate, schema
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	// What a crash mid-ingest leaves: an ingesting job with its messages.
	db, err := sql.Open("sqlite", "file:"+cfg.DBPath()+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`INSERT INTO jobs (partner, source, status, priority, total, created_at) VALUES ('acme', ?, ?, ?, 0, 1)`,
		store.SourceFile, store.JobIngesting, store.PriorityBulk)
	if err != nil {
		t.Fatal(err)
	}
	jobID, _ := res.LastInsertId()
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
		INSERT INTO messages (job_id, channel, recipient, body, status, next_attempt_at, updated_at)
		SELECT ?, 'email', 'user' || i || '@example.com', printf('%.300c', 'x'), 'queued', 0, 0 FROM n`, jobID); err != nil {
		t.Fatal(err)
	}
	// And what a crash mid-send leaves: messages whose leases expired,
	// which the sender must return to the queue before it sends.
	const inFlight = 20000
	res, err = db.Exec(`INSERT INTO jobs (partner, source, status, priority, total, created_at) VALUES ('acme', 'api', 'sending', 0, ?, ?)`,
		inFlight, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	sendingID, _ := res.LastInsertId()
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO messages (job_id, channel, recipient, body, status, lease_until, next_attempt_at, updated_at)
		SELECT ?, 'email', 'inflight' || i || '@example.com', printf('%.300c', 'y'), 'sending', 1, 0, 0 FROM n`, inFlight, sendingID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE jobs SET first_message_id = (SELECT min(id) FROM messages WHERE job_id = ?1),
		last_message_id = (SELECT max(id) FROM messages WHERE job_id = ?1) WHERE id = ?1`, sendingID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	filler := fillDisk(t, dir, 256<<10) // room to open the database, not to clean up

	d = startDaemon(t, cfg)
	if code, body := d.get(t, "/healthz"); code != 200 {
		t.Fatalf("healthz with a full disk = %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "readyz to say the cleanup is pending", func() bool {
		code, body := d.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "cannot be removed yet")
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "readyz once space is freed", func() bool { code, _ := d.get(t, "/readyz"); return code == 200 })
	var jobs struct{ Jobs []apiJob }
	d.API(t, "GET", "/api/v1/jobs?status=ingesting", &jobs)
	if len(jobs.Jobs) != 0 {
		t.Errorf("the interrupted job is still there: %+v", jobs.Jobs)
	}
	// The sender settled what the crash left once it could, and delivers.
	waitFor(t, 120*time.Second, "the in-flight messages to be delivered", func() bool {
		return len(d.OutboxLines(t, "email")) >= inFlight
	})
	// And the daemon takes files again.
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), shippedTemplate)
	d.waitTemplates(t, 1)
	renameInto(t, filepath.Join(home, "inbox", "shipped", "after.csv"), "email,first_name,order_id\na@example.com,A,1\n")
	d.jobFor(t, "inbox/shipped/after.csv", "done")
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	integrityOK(t, cfg.DBPath())
}

// lastLines keeps the end of a long output for an error message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
