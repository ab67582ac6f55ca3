package ingest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errReplaced means the file at a path is no longer the one that was read:
// a new upload replaced it.
var errReplaced = errors.New("file replaced by a new upload")

// archive moves an ingested original out of the partner's home into
// <data_dir>/archive/<partner>/<yyyy-mm-dd>/ (the day in UTC), under a new
// name when one of that name is already there, and returns its new path.
// With read set, only that file is moved: if the path now holds another
// (a new upload of the same name), it stays and errReplaced is returned.
func (in *Ingester) archive(p *partner, abs string, read os.FileInfo) (string, error) {
	dir := filepath.Join(in.cfg.ArchiveDir(), p.cfg.Name, in.now().UTC().Format("2006-01-02"))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("cannot create archive folder: %w", err)
	}
	base := filepath.Base(abs)
	stem, ext := splitExt(base)
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = stem + "-" + strconv.Itoa(n) + ext
		}
		dst := filepath.Join(dir, name)
		// Link then remove, rather than rename, so an existing archive file
		// is never overwritten.
		err := os.Link(abs, dst)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			if read != nil {
				if now, err := os.Stat(abs); err == nil && !os.SameFile(now, read) {
					return "", errReplaced
				}
			}
			if err := os.Rename(abs, dst); err != nil {
				return "", fmt.Errorf("cannot move file to the archive: %w", err)
			}
			return dst, nil
		}
		if read != nil {
			if linked, err := os.Stat(dst); err == nil && !os.SameFile(linked, read) {
				os.Remove(dst)
				return "", errReplaced
			}
			// The link holds the file read; the name may have been taken
			// by a new upload in between, which must stay.
			if now, err := os.Stat(abs); err != nil || !os.SameFile(now, read) {
				return dst, nil
			}
		}
		if err := os.Remove(abs); err != nil {
			return dst, fmt.Errorf("cannot remove archived file from the inbox: %w", err)
		}
		return dst, nil
	}
}

// splitExt splits "orders.csv.gz" into "orders" and ".csv.gz".
func splitExt(name string) (string, string) {
	if i := strings.IndexByte(name[1:], '.'); i >= 0 {
		return name[:i+1], name[i+1:]
	}
	return name, ""
}
