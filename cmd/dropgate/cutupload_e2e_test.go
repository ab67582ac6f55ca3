package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/dropgate/dropgate/config"
)

// These tests kill real clients in the middle of an upload to the real
// FTP and SFTP servers, then upload the whole file again with the same
// client, and check what the daemon did with the pieces: every row of the
// file queued exactly once (held-then-whole, or a queued prefix then the
// rest) and no truncated value in any message.

// cutRows is the size of the list: large enough that a throttled client is
// still sending when it is killed.
const cutRows = 20000

// cutList is the list the clients upload: a literal SMS per row, each
// value ending in a marker a truncation would lose.
func cutList() []byte {
	var b bytes.Buffer
	b.WriteString("phone,message\n")
	for i := range cutRows {
		fmt.Fprintf(&b, "91%07d,%s\n", i, cutBody(i))
	}
	return b.Bytes()
}

func cutBody(i int) string {
	return fmt.Sprintf("row %d of the cut test and whole up to here: end-%d", i, i)
}

// cutFixture is a daemon and the list on disk.
type cutFixture struct {
	d    *testDaemon
	dir  string
	list string // local path of the whole list
	data []byte
}

func newCutFixture(t *testing.T) *cutFixture {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	f := &cutFixture{d: startDaemon(t, cfg), dir: t.TempDir(), data: cutList()}
	f.list = filepath.Join(f.dir, "list.csv")
	if err := os.WriteFile(f.list, f.data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cutFixture) ftpAddr() string { return f.d.Addrs.FTP.String() }

// partials are the uploads in progress in the home: in the uploads
// folder, or in the node's own folder inside it (PostgreSQL).
func (f *cutFixture) partials() []string {
	dir := filepath.Join(f.d.Home("acme"), config.UploadsDir)
	names, _ := filepath.Glob(filepath.Join(dir, config.UploadTempPrefix+"*"))
	nodes, _ := filepath.Glob(filepath.Join(dir, "*", config.UploadTempPrefix+"*"))
	return append(names, nodes...)
}

// waitPartial waits until the server holds part of an upload in progress
// under its hidden name: the client is sending.
func (f *cutFixture) waitPartial(t *testing.T, min int64) {
	t.Helper()
	waitFor(t, 60*time.Second, "part of the upload to reach the server", func() bool {
		names := f.partials()
		for _, n := range names {
			if fi, err := os.Stat(n); err == nil && fi.Size() >= min {
				return true
			}
		}
		return false
	})
}

// apiFile is a file as GET /api/v1/files shows it.
type apiFile struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Status string `json:"status"`
	Error  string `json:"error"`
	Rows   int    `json:"rows_total"`
	JobID  int64  `json:"job_id"`
}

func (f *cutFixture) files(t *testing.T) []apiFile {
	t.Helper()
	var resp struct{ Files []apiFile }
	f.d.API(t, "GET", "/api/v1/files?partner=acme", &resp)
	return resp.Files
}

// waitFirstOutcome waits until the cut upload was dealt with (held,
// queued or, if the client's death aborted the transfer, nothing left).
func (f *cutFixture) waitFirstOutcome(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, "the cut upload to be held, queued or dropped", func() bool {
		names := f.partials()
		if len(names) > 0 {
			return false
		}
		_, err := os.Stat(filepath.Join(f.d.Home("acme"), "inbox", "list.csv"))
		if errors.Is(err, os.ErrNotExist) {
			return true // queued and archived, or never in place
		}
		for _, file := range f.files(t) {
			if file.Status == "held" {
				return true
			}
		}
		return false
	})
}

// checkEachRowOnce waits for the whole upload to be queued and every job to
// be delivered, then checks that each row reached exactly one message,
// whole.
func (f *cutFixture) checkEachRowOnce(t *testing.T) {
	t.Helper()
	var files []apiFile
	waitFor(t, 60*time.Second, "the whole upload to be queued", func() bool {
		files = f.files(t)
		return len(files) > 0 && files[0].Size == int64(len(f.data)) && files[0].Status == "queued"
	})
	queued := 0
	for _, file := range files {
		if file.Status == "queued" {
			queued += file.Rows
		}
	}
	if queued != cutRows {
		t.Errorf("files = %+v: %d rows queued in all, want %d", files, queued, cutRows)
	}
	var lines []map[string]any
	waitFor(t, 120*time.Second, "every queued row delivered", func() bool {
		lines = f.d.OutboxLines(t, "sms")
		return len(lines) >= queued
	})
	seen := make([]int, cutRows)
	for _, m := range lines {
		line := int(m["line"].(float64))
		i := line - 2
		if i < 0 || i >= cutRows {
			t.Errorf("message for line %d, which the file does not have", line)
			continue
		}
		seen[i]++
		if body := m["body"].(string); body != cutBody(i) {
			t.Errorf("line %d was sent as %q, want %q", line, body, cutBody(i))
		}
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("line %d sent %d times, want once", i+2, n)
		}
	}
	t.Logf("files: %+v", files)
}

// startKilled starts a client, waits until the server has part of its
// upload, and kills it.
func (f *cutFixture) startKilled(t *testing.T, sig syscall.Signal, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	f.waitPartial(t, 64<<10)
	select {
	case err := <-done:
		t.Fatalf("%s ended before it was killed (%v):\n%s", name, err, out.String())
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not end after %v:\n%s", name, sig, out.String())
	}
	t.Logf("%s after %v:\n%s", name, sig, out.String())
}

func TestCurlKilledMidUploadThenUploadingAgainQueuesEachRowOnce(t *testing.T) {
	bin := requireClient(t, "curl")
	f := newCutFixture(t)
	url := "ftp://" + f.ftpAddr() + "/inbox/list.csv"
	user := "acme:" + testPassword
	f.startKilled(t, syscall.SIGKILL, bin, "-sS", "--limit-rate", "100k", "--user", user, "-T", f.list, url)
	f.waitFirstOutcome(t)
	if out, err := runTool(t, bin, "-sS", "--user", user, "-T", f.list, url); err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	f.checkEachRowOnce(t)
}

func TestLftpKilledMidUploadThenUploadingAgainQueuesEachRowOnce(t *testing.T) {
	bin := requireClient(t, "lftp")
	f := newCutFixture(t)
	host, port, _ := net.SplitHostPort(f.ftpAddr())
	script := func(rate string) string {
		return fmt.Sprintf("set ftp:ssl-allow no; set net:max-retries 1; set net:limit-rate %s; open -u acme,%s -p %s %s; put %s -o inbox/list.csv; bye",
			rate, testPassword, port, host, f.list)
	}
	f.startKilled(t, syscall.SIGKILL, bin, "-c", script("100000"))
	f.waitFirstOutcome(t)
	if out, err := runTool(t, bin, "-c", script("0")); err != nil {
		t.Fatalf("lftp: %v\n%s", err, out)
	}
	f.checkEachRowOnce(t)
}

// ftplibScript uploads a file with Python's ftplib; with "slow" it sends
// 4 KiB at a time with a pause, so that it can be killed mid-upload.
const ftplibScript = `import ftplib, sys, time
host, port, user, pw, path, mode = sys.argv[1:7]
ftp = ftplib.FTP()
ftp.connect(host, int(port))
ftp.login(user, pw)
ftp.voidcmd("TYPE I")
with open(path, "rb") as f:
    if mode == "slow":
        conn = ftp.transfercmd("STOR inbox/list.csv")
        while True:
            block = f.read(4096)
            if not block:
                break
            conn.sendall(block)
            time.sleep(0.02)
        conn.close()
        ftp.voidresp()
    else:
        ftp.storbinary("STOR inbox/list.csv", f)
ftp.quit()
`

func TestPythonFtplibKilledMidUploadThenUploadingAgainQueuesEachRowOnce(t *testing.T) {
	bin := requireClient(t, "python3")
	f := newCutFixture(t)
	script := filepath.Join(f.dir, "upload.py")
	writeFile(t, script, ftplibScript)
	host, port, _ := net.SplitHostPort(f.ftpAddr())
	f.startKilled(t, syscall.SIGKILL, bin, script, host, port, "acme", testPassword, f.list, "slow")
	f.waitFirstOutcome(t)
	if out, err := runTool(t, bin, script, host, port, "acme", testPassword, f.list, "fast"); err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	f.checkEachRowOnce(t)
}

// cutReader gives the first n bytes of a file, then fails: a program that
// dies while it streams its file.
type cutReader struct {
	r io.Reader
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("the sending program died")
	}
	p = p[:min(len(p), c.n)]
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestJlaffayeFTPConnectionClosedMidStorThenUploadingAgainQueuesEachRowOnce(t *testing.T) {
	f := newCutFixture(t)
	dial := func() *jftp.ServerConn {
		c, err := jftp.Dial(f.ftpAddr(), jftp.DialWithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("acme", testPassword); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial()
	// Cut inside a row: in its last value.
	cut := bytes.Index(f.data, []byte("end-12345\n")) + 5
	err := c.Stor("inbox/list.csv", &cutReader{r: bytes.NewReader(f.data), n: cut})
	c.Quit() // the connection closes with the upload half sent
	if err == nil {
		t.Fatal("Stor of a failing reader succeeded")
	}
	f.waitFirstOutcome(t)
	files := f.files(t)
	if len(files) != 1 || files[0].Status != "held" || !strings.Contains(files[0].Error, "the upload looks cut off") {
		t.Fatalf("files after the cut = %+v, want it held as cut off", files)
	}
	// The file is recorded as held before its report is written.
	reportPath := filepath.Join(f.d.Home("acme"), "reports", "list.csv.errors.csv")
	waitFor(t, 30*time.Second, "the held file's report", func() bool {
		_, err := os.Stat(reportPath)
		return err == nil
	})
	report, err := os.ReadFile(reportPath)
	if err != nil || !strings.Contains(string(report), "0,,,\"the upload looks cut off: the last line has no line end; upload it again, or add the line end if it is complete\"\n") {
		t.Errorf("report = %q, %v", report, err)
	}

	c = dial()
	defer c.Quit()
	if err := c.Stor("inbox/list.csv", bytes.NewReader(f.data)); err != nil {
		t.Fatal(err)
	}
	f.checkEachRowOnce(t)
}

// A client that died after a whole line: the prefix is queued, and the
// whole file uploaded again queues only the rest, with a report saying so.
func TestJlaffayeFTPCutAtALineEndThenWholeQueuesTheRestOnly(t *testing.T) {
	f := newCutFixture(t)
	c, err := jftp.Dial(f.ftpAddr(), jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("acme", testPassword); err != nil {
		t.Fatal(err)
	}
	cut := bytes.Index(f.data, []byte("910005000,")) // after line 5001
	if err := c.Stor("inbox/list.csv", bytes.NewReader(f.data[:cut])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the prefix to be queued", func() bool {
		files := f.files(t)
		return len(files) == 1 && files[0].Status == "queued"
	})
	first := f.files(t)[0]
	if err := c.Stor("inbox/list.csv", bytes.NewReader(f.data)); err != nil {
		t.Fatal(err)
	}
	f.checkEachRowOnce(t)
	var report []string
	waitFor(t, 20*time.Second, "the report", func() bool {
		b, _ := os.ReadFile(filepath.Join(f.d.Home("acme"), "reports", "list.csv.errors.csv"))
		report = strings.Split(string(b), "\n")
		return len(report) > 1
	})
	want := fmt.Sprintf("0,,,lines 2-5001 were queued by job %d from the earlier upload of this name; lines 5002-%d are queued now", first.JobID, cutRows+1)
	if report[1] != want {
		t.Errorf("report line = %q, want %q", report[1], want)
	}
}

func TestOpenSSHSftpInterruptedMidPutThenPutAgainQueuesEachRowOnce(t *testing.T) {
	bin := requireClient(t, "sftp")
	cf := newClientFixture(t)
	f := &cutFixture{d: cf.d, dir: cf.dir, data: cutList()}
	f.list = filepath.Join(f.dir, "list.csv")
	writeFile(t, f.list, string(f.data))
	batch := filepath.Join(f.dir, "batch")
	writeFile(t, batch, fmt.Sprintf("put %s inbox/list.csv\n", f.list))
	args := func(limit string) []string {
		a := []string{"-b", batch, "-P", fmt.Sprint(cf.d.Addrs.SFTP.(*net.TCPAddr).Port), "-i", cf.keyFile,
			"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
			"-o", "UserKnownHostsFile=" + cf.knownHost, "-o", "StrictHostKeyChecking=yes"}
		if limit != "" {
			a = append(a, "-l", limit)
		}
		return append(a, "acme@127.0.0.1")
	}
	// Ctrl-C: the client stops sending and closes the handle cleanly.
	f.startKilled(t, syscall.SIGINT, bin, args("800")...)
	f.waitFirstOutcome(t)
	if out, err := runTool(t, bin, args("")...); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	f.checkEachRowOnce(t)
}
