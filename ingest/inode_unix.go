//go:build unix

package ingest

import (
	"os"
	"syscall"
)

// inodeOf is the file's inode number, part of its version (claims.go).
func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
