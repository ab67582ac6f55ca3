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
