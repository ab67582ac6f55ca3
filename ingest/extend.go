package ingest

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// gzipCutMessage reports a .gz whose data stops before gzip's own end:
// the usual sign of an upload cut off.
const gzipCutMessage = "the gzip data stops before its end: the upload looks cut off; nothing was queued. Upload the file again"

// prefixCuts returns the sizes of the earlier uploads, ascending and
// distinct: where a new file's prefix hashes are taken.
func prefixCuts(earlier []store.File) []int64 {
	cuts := make([]int64, 0, len(earlier))
	for _, f := range earlier {
		cuts = append(cuts, f.Size)
	}
	slices.Sort(cuts)
	return slices.Compact(cuts)
}

// extendsEarlier finds the largest earlier upload whose bytes begin the
// file: the rows it had are not queued again.
func (fj *fileJob) extendsEarlier(earlier []store.File, facts fileFacts) {
	for _, e := range earlier { // largest first
		i, ok := slices.BinarySearch(facts.cuts, e.Size)
		if ok && i < len(facts.cutSHA) && facts.cutSHA[i] == e.SHA256 {
			fj.extends = &e
			fj.skipThrough = facts.cutLine[i]
			return
		}
	}
}

// skip counts a record the earlier job already had.
func (fj *fileJob) skip(line int) {
	if fj.skipped == 0 {
		fj.firstSkipped = line
	}
	fj.skipped++
}

// checkCounts rejects a file whose rows do not match its marker's count,
// or that only repeats an earlier upload's rows.
func (fj *fileJob) checkCounts(mk *markerCheck) *fileLevelError {
	total := fj.rows + fj.skipped
	if mk != nil && mk.rows >= 0 && total != mk.rows {
		return &fileLevelError{Msg: fmt.Sprintf("the file has %d rows but its marker %s%s says %d: the file is incomplete or not the one the marker was made for; nothing was queued. Upload the whole file again, then its marker",
			total, filepath.Base(fj.rel), config.MarkerSuffix, mk.rows)}
	}
	if fj.extends != nil && fj.rows == 0 {
		return &fileLevelError{Msg: fmt.Sprintf("this upload only repeats the rows that job %d queued from the earlier upload of this name, and adds none; nothing was queued", fj.extends.JobID)}
	}
	return nil
}

// withExtensionNote puts, first in the report, which lines an earlier job
// of the same name had and which are this job's. Line numbers stay those
// of the whole file.
func (fj *fileJob) withExtensionNote(errs []store.FileError, facts fileFacts) []store.FileError {
	if fj.extends == nil || fj.skipped == 0 {
		return errs
	}
	note := fmt.Sprintf("lines %d-%d were queued by job %d from the earlier upload of this name; lines %d-%d are queued now",
		fj.firstSkipped, fj.skipThrough, fj.extends.JobID, fj.skipThrough+1, facts.lines)
	return append([]store.FileError{{Line: 0, Error: note}}, errs...)
}
