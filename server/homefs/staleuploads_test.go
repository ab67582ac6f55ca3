package homefs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A node starting on shared homes leaves the uploads other nodes are
// writing, and removes only those nobody wrote to for long.
func TestCleanStaleUploadsKeepsUploadsInFlight(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, uploadsDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	fresh, stale := filepath.Join(dir, uploadTempName("a.csv")), filepath.Join(dir, uploadTempName("b.csv"))
	for _, p := range []string{fresh, stale} {
		if err := os.WriteFile(p, []byte("phone\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	if err := CleanStaleUploads(home, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("upload in flight removed: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale upload kept: %v", err)
	}
}
