package store

import (
	"slices"
	"testing"
	"time"
)

func TestChunkSizesArePowersOfTwoThatAddUp(t *testing.T) {
	for n, want := range map[int][]int{0: nil, 1: {1}, 7: {4, 2, 1}, 256: {256}, 600: {256, 256, 64, 16, 8}} {
		if got := chunkSizes(n, 256); !slices.Equal(got, want) {
			t.Errorf("chunkSizes(%d) = %v, want %v", n, got, want)
		}
	}
	if got := valuesList(2, 3); got != "(?, ?, ?), (?, ?, ?)" {
		t.Errorf("valuesList = %q", got)
	}
}

func TestCompleteMessagesHandlesEveryBatchShape(t *testing.T) {
	s := openTest(t)
	j := queueTest(t, s, "p", PriorityBulk, 300)
	cs, err := s.ClaimMessages(t.Context(), j.ID, "sms", time.Now(), time.Minute, 300)
	if err != nil || len(cs) != 300 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	var outs []Outcome
	for i, c := range cs {
		kind := OutcomeSent
		if i%7 == 0 {
			kind = OutcomeFailed
		}
		outs = append(outs, Outcome{ID: c.ID, JobID: j.ID, Attempt: c.Attempt, Kind: kind, At: time.Now()})
	}
	for _, n := range []int{1, 2, 3, 37, 257} { // 300 in uneven batches, mixed and not
		complete(t, s, outs[:n]...)
		outs = outs[n:]
	}
	got, _ := s.Job(t.Context(), j.ID)
	if got.Status != JobDone || got.Counts[MsgSent]+got.Counts[MsgFailed] != 300 || got.Counts[MsgFailed] != 43 {
		t.Fatalf("job = %+v", got)
	}
	for _, c := range cs[:5] {
		if atts, _ := s.MessageAttempts(t.Context(), c.ID); len(atts) != 1 {
			t.Errorf("message %d has attempts %+v", c.ID, atts)
		}
	}
}
