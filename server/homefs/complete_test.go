package homefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// renameRecorder also records renames from temporary names.
type renameRecorder struct {
	recorder
	renamed []string
}

func (r *renameRecorder) FileRenamed(partner, relPath string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renamed = append(r.renamed, partner+":"+relPath)
}

var _ RenameNotifier = (*renameRecorder)(nil)

func TestRenameFromTemporaryNameIsReportedAsARename(t *testing.T) {
	rec := &renameRecorder{}
	h, err := Open(filepath.Join(t.TempDir(), "acme"), Options{Partner: "acme", Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(upload(t, h, "inbox/a.csv.part", "x\n"))     // a temp name: nobody told
	must(upload(t, h, "inbox/direct.csv", "x\n"))     // an upload closing
	must(h.Rename("inbox/a.csv.part", "inbox/a.csv")) // the client's own rename
	must(upload(t, h, "inbox/.b.csv", "x\n"))
	must(h.Rename("inbox/.b.csv", "inbox/b.csv"))
	must(h.Rename("inbox/direct.csv", "inbox/moved.csv")) // real name to real name
	if got, want := rec.Calls(), []string{"acme:inbox/direct.csv", "acme:inbox/moved.csv"}; !slices.Equal(got, want) {
		t.Errorf("FileComplete calls = %v, want %v", got, want)
	}
	if want := []string{"acme:inbox/a.csv", "acme:inbox/b.csv"}; !slices.Equal(rec.renamed, want) {
		t.Errorf("FileRenamed calls = %v, want %v", rec.renamed, want)
	}
}

func TestMkdirIsRefusedPastMaxFolders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "acme")
	h, err := Open(dir, Options{Partner: "acme", MaxFolders: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, d := range []string{"inbox/a", "inbox/b", "lists/c"} {
		if err := h.Mkdir(d); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	for _, d := range []string{"inbox/d", "lists/e"} {
		err := h.Mkdir(d)
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "max_folders = 3") {
			t.Errorf("mkdir %s past the cap = %v, want refused naming max_folders", d, err)
		}
		if _, statErr := os.Stat(filepath.Join(dir, d)); statErr == nil {
			t.Errorf("%s was made", d)
		}
	}
	// Removing one makes room again.
	if err := h.Remove("inbox/a"); err != nil {
		t.Fatal(err)
	}
	if err := h.Mkdir("inbox/d"); err != nil {
		t.Errorf("mkdir after a removal: %v", err)
	}
}
