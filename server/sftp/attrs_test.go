package sftp_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

// TestAttributesOnAnOpenUploadApplyToIt: fstat and fsetstat on a file
// still being uploaded (paramiko's f.stat/f.chmod/f.utime, OpenSSH's
// `put -p`, WinSCP's preserved timestamp) succeed; the times are kept once
// the file is in place, and the upload completes once.
func TestAttributesOnAnOpenUploadApplyToIt(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	s := start(t, authtest.Config(t, acme), nil)
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	f, err := c.Create("inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	body := "email\na@example.com\n"
	if _, err := f.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatalf("fstat on the open upload: %v", err)
	}
	if info.Name() != "orders.csv" || info.Size() != int64(len(body)) {
		t.Errorf("fstat = %s, %d bytes; want orders.csv, %d", info.Name(), info.Size(), len(body))
	}
	if err := f.Chmod(0o600); err != nil {
		t.Errorf("fsetstat mode on the open upload: %v", err)
	}
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	// pkg/sftp's File has no Chtimes: setstat by path while the upload is
	// open, as some clients do (fsetstat of times: OpenSSH's put -p, in
	// server/e2e_test.go).
	if err := c.Chtimes("inbox/orders.csv", mtime, mtime); err != nil {
		t.Errorf("setstat times on the open upload: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(s.cfg.PartnerHome("acme"), "inbox", "orders.csv")
	got, err := os.Stat(final)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ModTime().Equal(mtime) {
		t.Errorf("mtime in place = %v, want %v", got.ModTime(), mtime)
	}
	if b, _ := os.ReadFile(final); string(b) != body {
		t.Errorf("file = %q", b)
	}
	if calls := s.notifier.Calls(); !slices.Equal(calls, []string{"acme:inbox/orders.csv"}) {
		t.Errorf("notifications = %v", calls)
	}
}

// TestRefusedResumeAndAppendAreLoggedWithTheirReason: an SFTP refusal is
// logged with its reason, as the FTP server does.
func TestRefusedResumeAndAppendAreLoggedWithTheirReason(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), func(o *sftp.Options) { o.Logger = logs.Logger() })
	c := connect(t, s, "acme", ssh.Password(acme.Password))
	if err := put(c, "inbox/a.csv", []byte("email\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenFile("inbox/a.csv", os.O_WRONLY|os.O_APPEND); err == nil {
		t.Error("append accepted")
	}
	if _, err := c.OpenFile("inbox/a.csv", os.O_WRONLY); err == nil {
		t.Error("resume accepted")
	}
	out := logs.String()
	for _, want := range []string{"op=append path=/inbox/a.csv reason=", "op=resume path=/inbox/a.csv reason="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
