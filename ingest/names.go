package ingest

import (
	"strings"
)

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
