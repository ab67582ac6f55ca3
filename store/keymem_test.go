package store

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The level finds every id of a key, in the sorted array, the tail or
// both, and gives a range's entries in key order; a dropped range is
// gone, the others stay.
func TestKeyLevelFindsEveryEntryAndSettlesInOrder(t *testing.T) {
	var l keyLevel
	want := map[int64][]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]int64, 300)
	for i := range keys {
		keys[i] = int64(rng.Uint64())
	}
	for id := int64(1); id <= 3*keyTailMax; id++ {
		k := keys[rng.IntN(len(keys))] // keys recur, as a contact's runs do
		l.add(k, id)
		want[k] = append(want[k], id)
	}
	if l.len() != 3*keyTailMax {
		t.Fatalf("len %d", l.len())
	}
	for k, ids := range want {
		got := l.appendIDs(nil, k)
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Fatalf("key %d: ids %v, want %v", k, got, ids)
		}
	}
	if got := l.appendIDs(nil, 12345); len(got) != 0 {
		t.Fatalf("a key never added has ids %v", got)
	}
	slice := sliceOf(keys[0])
	entries := l.sorted(slice)
	if !slices.IsSortedFunc(entries, compareKeyEntries) || len(entries) == 0 {
		t.Fatalf("range %d not in order: %v", slice, entries)
	}
	n := l.len()
	l.drop(slice)
	if l.len() != n-len(entries) || len(l.appendIDs(nil, keys[0])) != 0 {
		t.Fatalf("after the drop: len %d, ids of a dropped key %v", l.len(), l.appendIDs(nil, keys[0]))
	}
	for k, ids := range want {
		if sliceOf(k) != slice && len(l.appendIDs(nil, k)) != len(ids) {
			t.Fatalf("key %d of another range lost ids", k)
		}
	}
}
