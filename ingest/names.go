package ingest

import (
	"path/filepath"
	"strings"
)

// ignoredName reports whether a file name is a dotfile or a client's
// temporary name. Such files are never ingested: uploads in progress use
// them, and the rename to the real name is what counts.
func ignoredName(name string) bool {
	base := filepath.Base(name)
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

// recipientFileKind names how a recipient file is read, from its extension.
type recipientFileKind int

const (
	kindUnsupported recipientFileKind = iota
	kindPlain                         // .csv, .txt
	kindGzip                          // .csv.gz, .txt.gz
	kindZip                           // .zip, one or more CSVs inside
)

// kindOf returns how to read a file in inbox/ from its name.
func kindOf(name string) recipientFileKind {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".csv"), strings.HasSuffix(lower, ".txt"):
		return kindPlain
	case strings.HasSuffix(lower, ".csv.gz"), strings.HasSuffix(lower, ".txt.gz"):
		return kindGzip
	case strings.HasSuffix(lower, ".zip"):
		return kindZip
	}
	return kindUnsupported
}
