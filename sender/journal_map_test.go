package sender

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The open segment is a shared mapping (journal_map.go): what a worker
// appended is in the file as soon as append returns, before any rotation
// (a process killed then leaves it, zeros after it), also past the first
// allocation; a rotation cuts the segment back to its outcomes.
func TestMappedSegmentHoldsEachOutcomeOnceAppended(t *testing.T) {
	j, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	at := time.UnixMilli(1_800_000_000_123)
	var outs []store.Outcome
	for i := range 3000 { // ~260 KiB: past segmentMapSize twice
		o := store.Outcome{ID: int64(i + 1), JobID: 7, Attempt: 1, Kind: store.OutcomeSent, ProviderID: "SM-" + strings.Repeat("x", 40), At: at}
		if err := j.append([]store.Outcome{o}); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
		if i == 0 || i == 2999 {
			if j.m == nil {
				t.Fatalf("after %d outcomes the segment is not mapped (%v)", i+1, j.mapErr)
			}
			// As a replay after a kill would read it, mapping still open.
			got, err := readSegment(j.f.Name())
			if err != nil || !slices.EqualFunc(got, outs, sameOutcome) {
				t.Fatalf("after %d outcomes the segment holds %d, %v", i+1, len(got), err)
			}
		}
	}
	if len(j.m) <= segmentMapSize {
		t.Fatalf("mapping of %d bytes after %d written", len(j.m), j.used)
	}
	used := j.used
	seg, err := j.rotate()
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(seg); err != nil || st.Size() != used {
		t.Fatalf("rotated segment: %v, %v; want %d bytes", st, err, used)
	}
	got, err := readSegment(seg)
	if err != nil || !slices.EqualFunc(got, outs, sameOutcome) {
		t.Fatalf("rotated segment holds %d, %v", len(got), err)
	}
}
