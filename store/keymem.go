package store

import (
	"cmp"
	"slices"
)

// keyLevel is the recent level of one kind of hash keys (keyhash.go),
// held in memory: the keys of the rows stored since their range last
// settled. Nothing of it is only here: each key is its row's (an event's
// partner and id, a run's partner, workflow and contact) hashed again, and
// the rows a level holds are those after their range's mark, so it is
// read back from the rows (runKeys.readLevels).
//
// Each range of keys (keySlices) is a sorted array and a short tail of
// the keys added since, sorted into the array when it is full: adding is
// an append, a lookup (only of the keys the Bloom filters may hold, few)
// a binary search and a scan of the tail, and a range settles in key
// order as it is. A map of the keys cost a cache miss per key added, a
// twelfth of an event's writer time (workflow/BENCHMARKS.md, session 13).
type keyLevel struct {
	ranges [keySlices]keyRange
	n      int
}

type keyRange struct {
	sorted []keyEntry // by key, then id
	tail   []keyEntry // added since, in their order
}

type keyEntry struct{ hash, id int64 }

// keyTailMax is how many keys a range's tail takes before it is sorted
// into the range.
const keyTailMax = 1024

func compareKeyEntries(a, b keyEntry) int {
	if a.hash != b.hash {
		return cmp.Compare(a.hash, b.hash)
	}
	return cmp.Compare(a.id, b.id)
}

func (l *keyLevel) len() int { return l.n }

// sliceOf is the range of keys (of keySlices) that hash falls in: its top
// bits, so that a range is contiguous in the settled tables' key order.
func sliceOf(hash int64) int { return int(uint64(hash) >> 60) }

// add notes that row id has key hash.
func (l *keyLevel) add(hash, id int64) {
	r := &l.ranges[sliceOf(hash)]
	r.tail = append(r.tail, keyEntry{hash: hash, id: id})
	l.n++
	if len(r.tail) >= keyTailMax {
		r.merge()
	}
}

// merge sorts the tail into the sorted array, from the back (no copy of
// the array).
func (r *keyRange) merge() {
	if len(r.tail) == 0 {
		return
	}
	slices.SortFunc(r.tail, compareKeyEntries)
	i, j := len(r.sorted)-1, len(r.tail)-1
	r.sorted = append(r.sorted, r.tail...)
	for k := len(r.sorted) - 1; j >= 0; k-- {
		if i >= 0 && compareKeyEntries(r.sorted[i], r.tail[j]) > 0 {
			r.sorted[k] = r.sorted[i]
			i--
		} else {
			r.sorted[k] = r.tail[j]
			j--
		}
	}
	r.tail = r.tail[:0]
}

// appendIDs appends the ids of the rows with key hash to dst.
func (l *keyLevel) appendIDs(dst []int64, hash int64) []int64 {
	r := &l.ranges[sliceOf(hash)]
	i, _ := slices.BinarySearchFunc(r.sorted, hash, func(e keyEntry, h int64) int { return cmp.Compare(e.hash, h) })
	for ; i < len(r.sorted) && r.sorted[i].hash == hash; i++ {
		dst = append(dst, r.sorted[i].id)
	}
	for _, e := range r.tail {
		if e.hash == hash {
			dst = append(dst, e.id)
		}
	}
	return dst
}

// sorted returns a range's entries in key order, as the settled tables
// take them; valid until the level changes.
func (l *keyLevel) sorted(slice int) []keyEntry {
	r := &l.ranges[slice]
	r.merge()
	return r.sorted
}

// drop forgets a range's entries (settled: their keys are in the settled
// table now).
func (l *keyLevel) drop(slice int) {
	r := &l.ranges[slice]
	l.n -= len(r.sorted) + len(r.tail)
	r.sorted, r.tail = r.sorted[:0], r.tail[:0] // kept for the next round
}
