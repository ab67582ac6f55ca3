package homefs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dropgate/dropgate/config"
)

type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) FileComplete(partner, relPath string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, partner+":"+relPath)
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

var _ Notifier = (*recorder)(nil)

// newHome opens a home under a temp dir that also holds a "secret" file
// next to the home, for escape attempts.
func newHome(t *testing.T, max int64) (*FS, string, *recorder) {
	t.Helper()
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "secret.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "acme")
	rec := &recorder{}
	h, err := Open(dir, Options{Partner: "acme", MaxUploadBytes: max, Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, dir, rec
}

func upload(t *testing.T, h *FS, name, body string) error {
	t.Helper()
	u, err := h.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(u, body); err != nil {
		u.Close()
		return err
	}
	return u.Close()
}

func visible(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return nil
	})
	return out
}

func TestOpenCreatesStandardFolders(t *testing.T) {
	_, dir, _ := newHome(t, 0)
	for _, d := range []string{"inbox", "templates", "lists", "suppress", "reports"} {
		if info, err := os.Stat(filepath.Join(dir, d)); err != nil || !info.IsDir() {
			t.Errorf("%s/ missing: %v", d, err)
		}
	}
}

func TestUploadAppearsOnlyOnCleanClose(t *testing.T) {
	h, dir, rec := newHome(t, 0)
	u, err := h.Create("/inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteAt([]byte("email\n"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inbox", "orders.csv")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file visible before close: %v", err)
	}
	entries, _ := h.ReadDir("/inbox")
	if len(entries) != 0 {
		t.Errorf("listing shows the upload in progress: %v", entries[0].Name())
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, dir); !slices.Equal(got, []string{"inbox/orders.csv"}) {
		t.Errorf("files = %v", got)
	}
	if got := rec.Calls(); !slices.Equal(got, []string{"acme:inbox/orders.csv"}) {
		t.Errorf("notifications = %v", got)
	}
	if err := u.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if len(rec.Calls()) != 1 {
		t.Errorf("second close notified again")
	}
}

func TestUploadWithTransferErrorLeavesNothing(t *testing.T) {
	h, dir, rec := newHome(t, 0)
	u, err := h.Create("inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("email\nhalf"))
	u.TransferError(io.ErrUnexpectedEOF)
	if err := u.Close(); err == nil {
		t.Error("close after a transfer error succeeded")
	}
	if got := visible(t, dir); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	if len(rec.Calls()) != 0 {
		t.Errorf("notified: %v", rec.Calls())
	}
}

func TestUploadOverLimitFailsAndLeavesNothing(t *testing.T) {
	h, dir, rec := newHome(t, 10)
	err := upload(t, h, "inbox/big.csv", strings.Repeat("x", 11))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if got := visible(t, dir); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	if len(rec.Calls()) != 0 {
		t.Errorf("notified: %v", rec.Calls())
	}
	if err := upload(t, h, "inbox/small.csv", strings.Repeat("x", 10)); err != nil {
		t.Errorf("upload at the limit: %v", err)
	}
}

func TestPathsCannotLeaveTheHome(t *testing.T) {
	h, dir, _ := newHome(t, 0)
	// A symlink planted in the home (by anything but the partner).
	if err := os.Symlink(filepath.Dir(dir), filepath.Join(dir, "inbox", "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(filepath.Dir(dir), "secret.txt"), filepath.Join(dir, "reports", "secret.txt")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../secret.txt", "/../secret.txt", "inbox/../../secret.txt", "reports/secret.txt", "inbox/escape/secret.txt"} {
		if f, err := h.OpenRead(name); err == nil {
			f.Close()
			t.Errorf("read %q: escaped the home", name)
		}
	}
	if _, err := h.ReadDir("inbox/escape"); err == nil {
		t.Error("listed outside the home through a symlink")
	}
	if err := upload(t, h, "inbox/escape/planted.csv", "x"); err == nil {
		t.Error("wrote outside the home through a symlink")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "planted.csv")); err == nil {
		t.Error("file written outside the home")
	}
	// ".." is cleaned against "/": it lands inside the home, never above.
	if err := upload(t, h, "../../inbox/a.csv", "x"); err != nil {
		t.Errorf("../../inbox/a.csv: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inbox", "a.csv")); err != nil {
		t.Errorf("upload with .. not confined to the home: %v", err)
	}
}

func TestReportsAreReadOnlyButDeletable(t *testing.T) {
	h, dir, _ := newHome(t, 0)
	if err := os.WriteFile(filepath.Join(dir, "reports", "a.csv.result.csv"), []byte("line\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := upload(t, h, "reports/x.csv", "x"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("upload into reports/: %v", err)
	}
	if err := h.Mkdir("reports/sub"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("mkdir in reports/: %v", err)
	}
	if err := upload(t, h, "inbox/x.csv", "x"); err != nil {
		t.Fatal(err)
	}
	if err := h.Rename("inbox/x.csv", "reports/x.csv"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("rename into reports/: %v", err)
	}
	f, err := h.OpenRead("reports/a.csv.result.csv")
	if err != nil {
		t.Fatalf("download report: %v", err)
	}
	f.Close()
	if err := h.Remove("reports/a.csv.result.csv"); err != nil {
		t.Errorf("delete own report: %v", err)
	}
}

func TestFolderRules(t *testing.T) {
	h, _, _ := newHome(t, 0)
	for _, ok := range []string{"inbox/welcome", "lists/customers"} {
		if err := h.Mkdir(ok); err != nil {
			t.Errorf("mkdir %s: %v", ok, err)
		}
	}
	for _, bad := range []string{"newtop", "templates/sub", "inbox/welcome/deeper"} {
		if err := h.Mkdir(bad); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("mkdir %s: %v, want permission error", bad, err)
		}
	}
	for _, top := range []string{"inbox", "reports", "/lists"} {
		if err := h.Remove(top); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("remove %s: %v", top, err)
		}
		if err := h.Rename(top, "inbox/x"); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("rename %s: %v", top, err)
		}
	}
	if err := upload(t, h, "orders.csv", "x"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("upload to the home's root: %v", err)
	}
	if err := h.Remove("inbox/welcome"); err != nil {
		t.Errorf("rmdir inbox/welcome: %v", err)
	}
}

func TestRenameFromClientTempNameCompletesUpload(t *testing.T) {
	h, _, rec := newHome(t, 0)
	if err := upload(t, h, "inbox/orders.csv.filepart", "email\n"); err != nil {
		t.Fatal(err)
	}
	if got := rec.Calls(); len(got) != 0 {
		t.Fatalf("client temp name notified: %v", got)
	}
	if err := h.Rename("inbox/orders.csv.filepart", "inbox/orders.csv"); err != nil {
		t.Fatal(err)
	}
	if got := rec.Calls(); !slices.Equal(got, []string{"acme:inbox/orders.csv"}) {
		t.Errorf("notifications = %v", got)
	}
}

func TestSeekOnlyToStart(t *testing.T) {
	h, _, _ := newHome(t, 0)
	u, err := h.Create("inbox/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	if _, err := u.Seek(0, io.SeekStart); err != nil {
		t.Errorf("seek 0: %v", err)
	}
	if _, err := u.Seek(10, io.SeekStart); !errors.Is(err, ErrPartialWrite) {
		t.Errorf("seek 10: %v", err)
	}
}

func TestReservedTempPrefixIsRefused(t *testing.T) {
	h, _, _ := newHome(t, 0)
	if err := upload(t, h, "inbox/.dropgate-upload-x", "x"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("err = %v", err)
	}
}

func TestCloseWaitsForUploadsInFlight(t *testing.T) {
	h, dir, _ := newHome(t, 0)
	u, err := h.Create("inbox/late.csv")
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	io.WriteString(u, "email\n")
	if err := u.Close(); err != nil {
		t.Fatalf("upload finishing after the session closed: %v", err)
	}
	if got := visible(t, dir); !slices.Equal(got, []string{"inbox/late.csv"}) {
		t.Errorf("files = %v", got)
	}
}

func TestWritesDoNotGoThroughSymlinksInsideTheHome(t *testing.T) {
	h, dir, _ := newHome(t, 0)
	// A link that stays inside the home but would turn inbox/ into reports/.
	if err := os.Symlink("../reports", filepath.Join(dir, "inbox", "toreports")); err != nil {
		t.Fatal(err)
	}
	if err := upload(t, h, "inbox/toreports/fake.result.csv", "x"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("upload through an in-home symlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "reports", "fake.result.csv")); err == nil {
		t.Error("a file was written into reports/")
	}
	// A planted link to a file outside must not be renamed into place.
	outside := filepath.Join(filepath.Dir(dir), "secret.txt")
	if err := os.Symlink(outside, filepath.Join(dir, "inbox", "secret.csv.part")); err != nil {
		t.Fatal(err)
	}
	if err := h.Rename("inbox/secret.csv.part", "inbox/secret.csv"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("rename of a planted symlink: %v", err)
	}
}

func TestUploadTempNamesCannotBeRenamedOrRemoved(t *testing.T) {
	h, dir, rec := newHome(t, 0)
	u, err := h.Create("inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	io.WriteString(u, "email\nhalf")
	// The upload in progress is out of the watched inbox (no event per
	// write), in the hidden uploads folder of the same home.
	if entries, _ := os.ReadDir(filepath.Join(dir, "inbox")); len(entries) != 0 {
		t.Fatalf("inbox/ holds %v while uploading", entries)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, config.UploadsDir))
	if len(entries) != 1 {
		t.Fatalf("%s/ holds %v", config.UploadsDir, entries)
	}
	tmp := config.UploadsDir + "/" + entries[0].Name()
	if err := h.Rename(tmp, "inbox/stolen.csv"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("rename of an upload in progress: %v", err)
	}
	if err := h.Remove(tmp); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("remove of an upload in progress: %v", err)
	}
	if err := h.Rename(config.UploadsDir, "inbox/x"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("rename of the uploads folder: %v", err)
	}
	if err := h.Remove(config.UploadsDir); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("remove of the uploads folder: %v", err)
	}
	if err := upload(t, h, config.UploadsDir+"/x.csv", "x"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("upload into the uploads folder: %v", err)
	}
	for _, name := range []string{"/" + config.UploadsDir, tmp} {
		if _, err := h.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s): %v", name, err)
		}
		if _, err := h.OpenRead(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenRead(%s): %v", name, err)
		}
	}
	if _, err := h.ReadDir(config.UploadsDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir of the uploads folder: %v", err)
	}
	top, err := h.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.Name() == config.UploadsDir {
			t.Errorf("the home's listing shows %s", e.Name())
		}
	}
	if len(rec.Calls()) != 0 {
		t.Errorf("notified: %v", rec.Calls())
	}
	io.WriteString(u, "\n")
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "inbox", "orders.csv")); err != nil || string(b) != "email\nhalf\n" {
		t.Errorf("in place: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, config.UploadsDir)); len(entries) != 0 {
		t.Errorf("%s/ keeps %v after the upload", config.UploadsDir, entries)
	}
}

func TestCleanUploadsRemovesCutOffUploads(t *testing.T) {
	h, dir, _ := newHome(t, 0)
	u, err := h.Create("inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(u, "email\nhalf")
	// A stop cut it off: the file stays, its Close never came.
	if err := CleanUploads(dir, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, config.UploadsDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("uploads folder after CleanUploads: %v", err)
	}
	// The next session makes it again.
	h2, err := Open(dir, Options{Partner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if err := upload(t, h2, "inbox/b.csv", "email\n"); err != nil {
		t.Fatal(err)
	}
	_ = h
}

// Nodes sharing the homes keep their uploads in flight apart: a node
// starting again empties only its own folder, never the upload another
// node is still receiving.
func TestCleanUploadsOfOneNodeLeavesAnotherNodesUploadInFlight(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, Options{Partner: "acme", Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(dir, Options{Partner: "acme", Node: "node-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ua, err := a.Create("inbox/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(ua, "email\nx@example.com\n")
	ub, err := b.Create("inbox/b.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(ub, "email\n")
	if err := CleanUploads(dir, "node-b"); err != nil { // node b restarts
		t.Fatal(err)
	}
	if err := ua.Close(); err != nil {
		t.Fatalf("node a's upload after node b's start: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "inbox", "a.csv")); err != nil || string(got) != "email\nx@example.com\n" {
		t.Fatalf("node a's upload in place: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, config.UploadsDir, "node-b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("node b's folder after its clean: %v", err)
	}
	ub.Close()
}

// FTP uploads come through ReadFrom (io.Copy's path, splice from the
// data connection): the size limit holds there as in Write.
func TestReadFromKeepsTheSizeLimit(t *testing.T) {
	h, dir, rec := newHome(t, 10)
	u, err := h.Create("inbox/ok.csv")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := u.ReadFrom(strings.NewReader("email\na@b\n")); err != nil || n != 10 {
		t.Fatalf("ReadFrom at the limit: %d, %v", n, err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "inbox", "ok.csv")); string(b) != "email\na@b\n" {
		t.Errorf("in place: %q", b)
	}
	u, err = h.Create("inbox/big.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.ReadFrom(strings.NewReader("email\na@b.c\n")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFrom past the limit: %v", err)
	}
	if err := u.Close(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inbox", "big.csv")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an upload past the limit is in place: %v", err)
	}
	if got := rec.Calls(); !slices.Equal(got, []string{"acme:inbox/ok.csv"}) {
		t.Errorf("notified %v", got)
	}
}
