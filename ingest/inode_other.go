//go:build !unix

package ingest

import "os"

// inodeOf is 0 where the system has no inode to read: a file's version
// (claims.go) is then its size and modification time.
func inodeOf(os.FileInfo) uint64 { return 0 }
