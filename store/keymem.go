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
// read back from the rows (runKeys.build).
//
// The entries are kept by range of keys (keySlices), a range's settled
// and dropped at once; a key's entries are chained from the latest (a run
// key recurs: a contact runs a workflow again), in the range's array
// rather than a slice per key: no allocation per key, and the collector
// scans pointer-free arrays.
type keyLevel struct {
	latest map[int64]int32 // key → its latest entry in its range's array
	ranges [keySlices][]keyEntry
	n      int
}

type keyEntry struct {
	hash, id int64
	prev     int32 // the key's entry before, or -1
}

func newKeyLevel() keyLevel { return keyLevel{latest: map[int64]int32{}} }

func (l *keyLevel) len() int { return l.n }

// sliceOf is the range of keys (of keySlices) that hash falls in: its top
// bits, so that a range is contiguous in the settled tables' key order.
func sliceOf(hash int64) int { return int(uint64(hash) >> 60) }

// add notes that row id has key hash.
func (l *keyLevel) add(hash, id int64) {
	prev, ok := l.latest[hash]
	if !ok {
		prev = -1
	}
	r := &l.ranges[sliceOf(hash)]
	l.latest[hash] = int32(len(*r))
	*r = append(*r, keyEntry{hash: hash, id: id, prev: prev})
	l.n++
}

// appendIDs appends the ids of the rows with key hash to dst.
func (l *keyLevel) appendIDs(dst []int64, hash int64) []int64 {
	i, ok := l.latest[hash]
	if !ok {
		return dst
	}
	r := l.ranges[sliceOf(hash)]
	for ; i >= 0; i = r[i].prev {
		dst = append(dst, r[i].id)
	}
	return dst
}

// sorted returns the hash keys and ids of a range's entries in key order,
// as the settled tables take them: (hash, id) pairs.
func (l *keyLevel) sorted(slice int) []keyEntry {
	out := slices.Clone(l.ranges[slice])
	slices.SortFunc(out, func(a, b keyEntry) int {
		if a.hash != b.hash {
			return cmp.Compare(a.hash, b.hash)
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

// drop forgets a range's entries (settled: their keys are in the settled
// table now).
func (l *keyLevel) drop(slice int) {
	r := l.ranges[slice]
	for _, e := range r {
		delete(l.latest, e.hash)
	}
	l.n -= len(r)
	if cap(r) > 4*len(r)+4096 { // a range that shrank lets its array go
		r = nil
	}
	l.ranges[slice] = r[:0]
}
