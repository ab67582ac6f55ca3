package store

import "hash/maphash"

// keyFilter remembers the keys a first import has written, so that a batch
// looks up only the rows that may name a contact of an earlier batch
// (lists_batch.go). It is a blocked Bloom filter: a key sets
// filterBitsPerKey bits within one 64-byte block, so a test costs one cache
// miss; it answers "maybe" for every key added and for one to three keys
// in a hundred more, and a "maybe" only costs that row a lookup. Its first
// part is sized from the load's row count when known; past that it grows
// by parts of twice the size (a key is then tested in each). About 1.3
// bytes a key: 3.8 MB for a million-row first import.
type keyFilter struct {
	seeds  [3]maphash.Seed // email, phone, ref
	parts  []filterPart
	filled int // keys in the last part
	first  int // the first part's capacity
}

type filterPart struct {
	blocks [][8]uint64
	cap    int
}

const (
	filterFirstCap   = 1 << 16
	filterBitsPerKey = 6
)

// newKeyFilter returns an empty filter whose first part holds about keys
// keys (a sizing hint; 0 for unknown).
func newKeyFilter(keys int) *keyFilter {
	f := &keyFilter{first: max(keys, filterFirstCap)}
	for i := range f.seeds {
		f.seeds[i] = maphash.MakeSeed()
	}
	return f
}

// note adds key v of kind k (0 email, 1 phone, 2 ref) and reports whether
// it may have been added before: one pass over the key's blocks, which
// are then in the cache for the setting of its bits.
func (f *keyFilter) note(k int, v string) bool {
	h := maphash.String(f.seeds[k], v)
	seen := false
	for i := range f.parts {
		if !seen && f.parts[i].has(h) {
			seen = true
		}
	}
	if len(f.parts) == 0 || f.filled == f.parts[len(f.parts)-1].cap {
		c := f.first
		if n := len(f.parts); n > 0 {
			c = f.parts[n-1].cap * 2
		}
		// 10 bits a key: a block of 512 bits holds about 51 keys.
		f.parts = append(f.parts, filterPart{blocks: make([][8]uint64, c*10/512+1), cap: c})
		f.filled = 0
	}
	p := &f.parts[len(f.parts)-1]
	b := &p.blocks[blockOf(h, len(p.blocks))]
	for i := range filterBitsPerKey {
		bit := (h >> (i * 9)) & 511
		b[bit>>6] |= 1 << (bit & 63)
	}
	f.filled++
	return seen
}

// has reports whether every bit of hash h is set in p.
func (p *filterPart) has(h uint64) bool {
	b := &p.blocks[blockOf(h, len(p.blocks))]
	for j := range filterBitsPerKey {
		bit := (h >> (j * 9)) & 511
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

// blockOf picks a key's block from its hash, independently of the bit
// positions (the hash's low 54 bits).
func blockOf(h uint64, n int) uint64 {
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	return (h >> 32) % uint64(n)
}
