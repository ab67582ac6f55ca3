package homefs

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/dropgate/dropgate/config"
)

// uploadTempPrefix marks an upload in progress. It starts with a dot so the
// ingest watcher, which ignores dotfiles, never reads half a file.
const uploadTempPrefix = config.UploadTempPrefix

// uploadsDir holds uploads in progress, out of the watcher's sight: every
// write to a file in a watched folder would wake it (an inotify event per
// 32 KiB written).
const uploadsDir = config.UploadsDir

// maxNameBytes keeps temporary names within the usual 255-byte limit.
const maxNameBytes = 255

// isUploadTemp reports whether base is reserved for uploads in progress:
// the uploads folder, or a temporary name (which older versions kept next
// to the target).
func isUploadTemp(base string) bool {
	return base == uploadsDir || strings.HasPrefix(base, uploadTempPrefix)
}

// private reports whether a client path lies in the uploads folder, which
// no client sees.
func private(name string) bool {
	r := rel(name)
	return r == uploadsDir || strings.HasPrefix(r, uploadsDir+"/")
}

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
