package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// arrival is how a file came to be in place under its real name. The
// partner's completion rule (complete = close | rename | marker) decides
// which arrivals count.
type arrival int

const (
	// arrivedUnknown: found by a scan (at start, after an overflow, in a
	// folder just made); nobody saw how it came.
	arrivedUnknown arrival = iota
	// arrivedWritten: seen being written in place by a local program.
	arrivedWritten
	// arrivedUpload: an embedded server's upload closed cleanly and was
	// renamed from its hidden name. FTP cannot tell a finished upload from
	// a client that died, so this alone does not prove the file whole.
	arrivedUpload
	// arrivedRenamed: a temporary name renamed to the real one by the
	// client (SFTP rename, FTP RNFR/RNTO) or a local program (including a
	// file moved in from another folder): the writer's "done" signal.
	arrivedRenamed
)

// Reasons a file is held in the inbox rather than queued. Each is the
// partner's one line of reports/<file>.errors.csv.
const (
	cutOffReason = "the upload looks cut off: the last line has no line end; upload it again, or add the line end if it is complete"
	renameReason = "this file was not renamed into place, and your account takes a file only once a temporary name is renamed to the real one (complete = rename): " +
		"upload it as %s.part (or a name starting with a dot) and rename it to %s when the upload has finished"
)

// fileFacts is what one pass over a file tells: its hash and size, whether
// it looks cut off, and the hash and line count of the prefixes an earlier
// upload of the same name may be.
type fileFacts struct {
	sha     string
	size    int64
	lines   int  // physical lines: line ends, plus one for a last line without
	cut     bool // the last byte is not a line end while an earlier one is
	binary  bool // a NUL byte: not text at all, so not a cut CSV either
	cuts    []int64
	cutSHA  []string // SHA-256 of the first cuts[i] bytes
	cutLine []int    // line ends within the first cuts[i] bytes
	partial bool     // from endFacts: no sha, lines nor cuts
}

// inspectFile reads a file once, from its start. cuts must be ascending.
func inspectFile(f *os.File, cuts []int64) (fileFacts, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fileFacts{}, fmt.Errorf("cannot read file: %w", err)
	}
	facts := fileFacts{cuts: cuts}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var off int64
	newlines := 0
	var last byte
	next := 0 // index of the next cut
	for {
		n, err := f.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			take := len(chunk)
			if next < len(cuts) && off+int64(take) > cuts[next] {
				take = int(cuts[next] - off)
			}
			part := chunk[:take]
			h.Write(part)
			newlines += bytes.Count(part, []byte{'\n'})
			if !facts.binary && bytes.IndexByte(part, 0) >= 0 {
				facts.binary = true
			}
			if take > 0 {
				last = part[take-1]
			}
			off += int64(take)
			chunk = chunk[take:]
			for next < len(cuts) && off == cuts[next] {
				facts.cutSHA = append(facts.cutSHA, hex.EncodeToString(h.Sum(nil)))
				facts.cutLine = append(facts.cutLine, newlines)
				next++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fileFacts{}, fmt.Errorf("cannot read file: %w", err)
		}
	}
	facts.sha, facts.size, facts.lines = hex.EncodeToString(h.Sum(nil)), off, newlines
	if off > 0 && last != '\n' {
		facts.lines++
		// A single line without its end (a header alone) is not "cut":
		// it has no other line to compare with, and is reported for what
		// it is (no rows) instead.
		// Nor is a binary file (a spreadsheet saved with a .csv name): its
		// read says what it is instead.
		facts.cut = newlines > 0 && !facts.binary
	}
	return facts, nil
}

// marker is what a <name>.done file says about its file: nothing (both
// unset), its SHA-256, its row count, or both.
type marker struct {
	path string
	sha  string
	rows int // -1: not given
}

// maxMarkerBytes bounds what is read of a marker; a real one is a few lines.
const maxMarkerBytes = 4 << 10

// readMarker parses a marker: empty, or lines "sha256=<hex>" and
// "rows=<n>"; the output of sha256sum ("<hex>  <name>") is read as the
// SHA-256. A bad marker is a message for the partner.
func readMarker(path string) (marker, string, error) {
	m := marker{path: path, rows: -1}
	f, err := os.Open(path)
	if err != nil {
		return m, "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMarkerBytes+1))
	if err != nil {
		return m, "", err
	}
	name := strings.TrimSuffix(baseName(path), config.MarkerSuffix) + config.MarkerSuffix
	if len(b) > maxMarkerBytes {
		return m, fmt.Sprintf("the marker %s is longer than %d bytes; it may be empty, or hold the lines sha256=<hex> and rows=<n>", name, maxMarkerBytes), nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		key, value, hasEq := strings.Cut(line, "=")
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		switch {
		case line == "":
		case hasEq && key == "sha256" && isSHA256(value):
			m.sha = strings.ToLower(value)
		case hasEq && key == "rows":
			rows, err := strconv.Atoi(value)
			if err != nil || rows < 0 {
				return m, fmt.Sprintf("line %d of the marker %s: %q is not a row count; write rows=<number of rows, header not counted>", n, name, value), nil
			}
			m.rows = rows
		case !hasEq && isSHA256(strings.Fields(line)[0]):
			m.sha = strings.ToLower(strings.Fields(line)[0])
		default:
			return m, fmt.Sprintf("line %d of the marker %s is not understood (%q); a marker may be empty, or hold the lines sha256=<64 hex digits> and rows=<number of rows>", n, name, line), nil
		}
	}
	return m, "", nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// baseName is the last element of a slash- or OS-separated path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// isMarker reports whether rel names a completion marker.
func isMarker(rel string) bool {
	return strings.HasSuffix(rel, config.MarkerSuffix) && len(baseName(rel)) > len(config.MarkerSuffix)
}

// holdReason says why a file does not count as complete under the
// partner's rule, or "" when it does. Marker mode is decided before (a file
// without its marker is not read at all).
func holdReason(p *partner, rel string, arr arrival, facts fileFacts) string {
	switch p.cfg.Complete {
	case config.CompleteRename:
		if arr == arrivedUpload || arr == arrivedWritten {
			b := baseName(rel)
			return fmt.Sprintf(renameReason, b, b)
		}
	case config.CompleteClose, "":
		// .gz and .zip carry their own framing: a cut one fails to
		// decompress and is reported as such.
		if kindOf(baseName(rel)) == kindPlain && facts.cut {
			return cutOffReason
		}
	}
	return ""
}

// holdFile records a file as held for reason and reports it; the file
// stays in the inbox until an upload of the same name replaces it.
func (in *Ingester) holdFile(ctx context.Context, p *partner, rel string, facts fileFacts, reason string) error {
	if err := in.st.ReplaceHeldFiles(ctx, p.cfg.Name, rel); err != nil {
		return err
	}
	if _, err := in.st.HoldFile(ctx, store.File{Partner: p.cfg.Name, Name: rel, Size: facts.size, SHA256: facts.sha}, reason); err != nil {
		return err
	}
	if err := removeReport(reportPath(p, rel, resultSuffix)); err != nil {
		return err
	}
	if err := writeErrorsReport(reportPath(p, rel, errorsSuffix), []store.FileError{{Line: 0, Error: reason}}); err != nil {
		return err
	}
	in.log.Info("file held, not queued", "partner", p.cfg.Name, "file", rel, "reason", reason)
	return nil
}

// endFacts tells from a file's end, without reading the whole file,
// whether it looks cut off: the last byte is not a line end while an
// earlier one is. Its sha is left empty (partial is set): the hash is
// computed by the read that ingests the file (hashingReader), so a file is
// read from disk once. A binary file is recognised by a NUL byte near
// either end (a spreadsheet saved as .csv has them at its start); a file
// endFacts calls cut is inspected whole before it is held.
func endFacts(f *os.File, size int64) (fileFacts, error) {
	facts := fileFacts{size: size, partial: true}
	if size == 0 {
		return facts, nil
	}
	const window = 64 << 10
	buf := make([]byte, min(size, window))
	if _, err := f.ReadAt(buf, size-int64(len(buf))); err != nil && !errors.Is(err, io.EOF) {
		return fileFacts{}, fmt.Errorf("cannot read file: %w", err)
	}
	if buf[len(buf)-1] == '\n' {
		return facts, nil
	}
	binary := bytes.IndexByte(buf, 0) >= 0
	hasLineEnd := bytes.IndexByte(buf, '\n') >= 0
	if size > int64(len(buf)) {
		head := make([]byte, min(size-int64(len(buf)), window))
		if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
			return fileFacts{}, fmt.Errorf("cannot read file: %w", err)
		}
		binary = binary || bytes.IndexByte(head, 0) >= 0
		hasLineEnd = hasLineEnd || bytes.IndexByte(head, '\n') >= 0
		// A line longer than both windows: rare enough to say "maybe
		// cut" and let the whole inspection decide.
		hasLineEnd = hasLineEnd || size > 2*window
	}
	facts.binary = binary
	facts.cut = hasLineEnd && !binary
	return facts, nil
}

// hashingReader hashes every byte read through it: the content hash of a
// file comes from the read that ingests it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, h: sha256.New()}
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}

// finish reads what the ingest read left (it stops at a file-level error)
// and returns the file's SHA-256 and size.
func (hr *hashingReader) finish() (string, int64, error) {
	n, err := io.CopyBuffer(hr.h, readerOnly{hr.r}, make([]byte, 256<<10))
	hr.n += n
	if err != nil {
		return "", 0, fmt.Errorf("cannot read file: %w", err)
	}
	return hex.EncodeToString(hr.h.Sum(nil)), hr.n, nil
}

// readerOnly hides WriteTo, so finish counts what it reads.
type readerOnly struct{ io.Reader }
