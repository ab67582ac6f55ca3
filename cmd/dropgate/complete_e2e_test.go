package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
)

// ftpLogin connects to the daemon's FTP server as acme.
func ftpLogin(t *testing.T, d *testDaemon) *jftp.ServerConn {
	t.Helper()
	c, err := jftp.Dial(d.Addrs.FTP.String(), jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("acme", testPassword); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

// fileStatus waits for a file of that name with that status.
func (f *cutFixture) fileStatus(t *testing.T, name, status string) apiFile {
	t.Helper()
	var found apiFile
	waitFor(t, 30*time.Second, name+" "+status, func() bool {
		for _, file := range f.files(t) {
			if file.Name == name && file.Status == status {
				found = file
				return true
			}
		}
		return false
	})
	return found
}

const smsList = "phone,message\n912345678,hello\n912345679,hi\n"

func TestRenameModeOverFTPTakesOnlyAClientRename(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].Complete = config.CompleteRename
	f := &cutFixture{d: startDaemon(t, cfg)}
	c := ftpLogin(t, f.d)

	if err := c.Stor("inbox/direct.csv", strings.NewReader(smsList)); err != nil {
		t.Fatal(err)
	}
	held := f.fileStatus(t, "inbox/direct.csv", "held")
	if !strings.Contains(held.Error, "upload it as direct.csv.part") {
		t.Errorf("held for %q", held.Error)
	}
	// What WinSCP, FileZilla, rclone and lftp do: a temporary name, then RNFR/RNTO.
	if err := c.Stor("inbox/direct.csv.part", strings.NewReader(smsList)); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("inbox/direct.csv.part", "inbox/direct.csv"); err != nil {
		t.Fatal(err)
	}
	if got := f.fileStatus(t, "inbox/direct.csv", "queued"); got.Rows != 2 {
		t.Errorf("queued = %+v", got)
	}
}

func TestMarkerModeOverFTPChecksTheMarker(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].Complete = config.CompleteMarker
	f := &cutFixture{d: startDaemon(t, cfg)}
	c := ftpLogin(t, f.d)
	sum := sha256.Sum256([]byte(smsList))

	// A marker whose hash is not the file's: rejected, both archived.
	if err := c.Stor("inbox/bad.csv", strings.NewReader(smsList[:len(smsList)-3])); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("inbox/bad.csv.done", strings.NewReader(fmt.Sprintf("sha256=%x\n", sum))); err != nil {
		t.Fatal(err)
	}
	bad := f.fileStatus(t, "inbox/bad.csv", "rejected")
	if !strings.Contains(bad.Error, "but its marker bad.csv.done says") {
		t.Errorf("rejected for %q", bad.Error)
	}
	// The right file, then its marker: queued.
	if err := c.Stor("inbox/good.csv", strings.NewReader(smsList)); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("inbox/good.csv.done", strings.NewReader(fmt.Sprintf("sha256=%x\nrows=2\n", sum))); err != nil {
		t.Fatal(err)
	}
	if got := f.fileStatus(t, "inbox/good.csv", "queued"); got.Rows != 2 {
		t.Errorf("queued = %+v", got)
	}
	waitFor(t, 20*time.Second, "the markers archived", func() bool {
		names, _ := filepath.Glob(filepath.Join(f.d.Home("acme"), "inbox", "*"))
		return len(names) == 0
	})
}

func TestFoldersPastMaxFoldersAreRefusedOverFTPAndSFTP(t *testing.T) {
	f := newClientFixture(t, func(c *config.Config) { c.Partners[0].MaxFolders = 2 })
	c := ftpLogin(t, f.d)
	if err := c.MakeDir("inbox/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.MakeDir("lists/b"); err != nil {
		t.Fatal(err)
	}
	err := c.MakeDir("inbox/c")
	if err == nil || !strings.Contains(err.Error(), "max_folders = 2") {
		t.Errorf("MKD past the cap = %v, want refused naming max_folders", err)
	}

	key, err := ssh.ParsePrivateKey(mustRead(t, f.keyFile))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", f.d.Addrs.SFTP.String(), &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Mkdir("/inbox/d"); err == nil {
		t.Error("SFTP mkdir past the cap succeeded")
	}
	if _, err := os.Stat(filepath.Join(f.d.Home("acme"), "inbox", "d")); err == nil {
		t.Error("inbox/d was made")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The case: templates/welcome.tmpl moved in from another folder
// (so it settles for the quiet period), then at once inbox/welcome/s.csv
// uploaded over FTP. The list waits for the template instead of being
// rejected.
func TestListUploadedOverFTPWhileItsTemplateSettlesWaitsForIt(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Ingest.QuietPeriod = config.Duration(2 * time.Second)
	f := &cutFixture{d: startDaemon(t, cfg)}
	c := ftpLogin(t, f.d)
	if err := c.MakeDir("inbox/welcome"); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(cfg.DataDir, "staging")
	writeFile(t, filepath.Join(staging, "welcome.tmpl"), smsTemplate)
	if err := os.Rename(filepath.Join(staging, "welcome.tmpl"), filepath.Join(f.d.Home("acme"), "templates", "welcome.tmpl")); err != nil {
		t.Fatal(err)
	}
	list := "phone,first_name,order_id\n912345678,Ana,A-1\n"
	if err := c.Stor("inbox/welcome/s.csv", bytes.NewReader([]byte(list))); err != nil {
		t.Fatal(err)
	}
	got := f.fileStatus(t, "inbox/welcome/s.csv", "queued")
	if got.Rows != 1 {
		t.Errorf("file = %+v", got)
	}
}
