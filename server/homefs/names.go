package homefs

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// uploadTempPrefix marks an upload in progress. It starts with a dot so the
// ingest watcher, which ignores dotfiles, never reads half a file.
const uploadTempPrefix = ".dropgate-upload-"

// maxNameBytes keeps temporary names within the usual 255-byte limit.
const maxNameBytes = 255

func isUploadTemp(base string) bool { return strings.HasPrefix(base, uploadTempPrefix) }

// uploadTempName returns a fresh hidden name for an upload of base.
func uploadTempName(base string) string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it panics instead)
	name := uploadTempPrefix + hex.EncodeToString(b[:]) + "-" + base
	if len(name) > maxNameBytes {
		name = name[:maxNameBytes]
	}
	return name
}

// isClientTempName reports whether a name is one the ingest watcher skips:
// dotfiles and the temporary names clients upload to before renaming
// (WinSCP's ".filepart", FileZilla's ".part", "~" backups). Such a file is
// not a completed upload; its rename to a real name is.
func isClientTempName(base string) bool {
	if base == "" || strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") {
		return true
	}
	lower := strings.ToLower(base)
	for _, suffix := range []string{".part", ".filepart", ".tmp", ".partial", ".crdownload"} {
		if strings.HasSuffix(lower, suffix) {
			return true
		}
	}
	return false
}
