package homefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// CleanStaleUploads removes from the uploads folder of the partner home at
// home the uploads not written to for olderThan. Nodes sharing the homes
// (several dropgate nodes on one PostgreSQL) share this folder too: at a
// node's start the others' uploads are in flight there, so only what no
// server has written to for longer than any session may stay idle is
// taken to be cut off, not the whole folder as CleanUploads does.
func CleanStaleUploads(home string, olderThan time.Duration) error {
	dir := filepath.Join(home, uploadsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", dir, err)
	}
	cutoff := time.Now().Add(-olderThan)
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("cannot remove a stale upload: %w", err)
		}
	}
	return nil
}
