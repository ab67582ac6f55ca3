package store

import (
	"context"
	"database/sql"
	"fmt"
	"hash/maphash"
	"sync"
)

// On SQLite a batch reads the latest run of each of its contacts, one
// seek of the contact index per contact and workflow, a tenth of an
// event's writer time; most contacts that start a workflow (a signup)
// never ran it. runKeys is a Bloom filter of the (partner, workflow,
// contact) of every run in the table: a contact it does not hold has no
// run of that workflow, and is not read. It is built by one read of the
// contact index at the first batch, and kept by the batches, the only
// writers of new runs; a key it holds wrongly only costs the read.
//
// Only this store's writer connection writes on SQLite; another
// connection's commit (another process, a tool) changes the connection's
// PRAGMA data_version, and the filter is built again before it is
// trusted. PostgreSQL, where other nodes start runs, reads every
// contact.

// runKeyBits is a filter's size per key it holds (with runKeyHashes
// hashes in one 512-bit block, about 1–2% false positives at its
// capacity). A full filter is not built again larger (a read of every
// run): a new one twice its size takes the next keys, and a key is
// looked for in each.
const (
	runKeyBits   = 10
	runKeyHashes = 7
)

// runKeysMin is the first filter's capacity (a variable for tests).
var runKeysMin = 1 << 20

// runKeys is the filter and what it was built from; mu is held by the
// batch that uses it (batches take the writer one at a time anyway).
type runKeys struct {
	mu      sync.Mutex
	built   bool
	version int64 // the writer connection's data_version when built
	conn    any   // that connection
	blooms  []bloom
}

// bloom is one filter of at most cap keys.
type bloom struct {
	bits   []uint64
	n, cap int
}

// ready returns the filter for a batch in tx on the writer's driver
// connection dc, built or built again when needed, locked until the
// batch's done is called; nil (and the batch reads every contact) when
// it cannot be read.
func (k *runKeys) ready(ctx context.Context, tx *sql.Tx, dc any) (*runKeys, func()) {
	k.mu.Lock()
	var v int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		k.built = false
		k.mu.Unlock()
		return nil, func() {}
	}
	if !k.built || v != k.version || dc != k.conn {
		if err := k.build(ctx, tx); err != nil {
			k.built = false
			k.mu.Unlock()
			return nil, func() {}
		}
		k.version, k.conn = v, dc
	}
	return k, k.mu.Unlock
}

// build reads every run's key from the contact index.
func (k *runKeys) build(ctx context.Context, tx *sql.Tx) error {
	var runs int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_runs`).Scan(&runs); err != nil {
		return fmt.Errorf("cannot count runs: %w", err)
	}
	k.blooms = []bloom{newBloom(max(runKeysMin, 2*runs))}
	rows, err := tx.QueryContext(ctx, `SELECT partner, workflow, contact FROM workflow_runs`)
	if err != nil {
		return fmt.Errorf("cannot read the runs' contacts: %w", err)
	}
	defer rows.Close()
	var p, w, c string
	for rows.Next() {
		if err := rows.Scan(&p, &w, &c); err != nil {
			return err
		}
		k.add(hashRunKey(p, w, c))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	k.built = true
	return nil
}

func newBloom(capacity int) bloom {
	return bloom{bits: make([]uint64, (capacity*runKeyBits+511)/512*8), cap: capacity}
}

// runKeyHash is a run key's hash: the block from the first, the bits in
// it from the second (7 × 9 bits). One seed for the process, so that a
// batch's events are hashed before it takes the writer (prepareEvents).
type runKeyHash [2]uint64

var runKeySeed = maphash.MakeSeed()

func hashRunKey(partner, workflow, contact string) runKeyHash {
	var h maphash.Hash
	h.SetSeed(runKeySeed)
	h.WriteString(partner)
	h.WriteByte(0)
	h.WriteString(workflow)
	h.WriteByte(0)
	h.WriteString(contact)
	x := h.Sum64()
	return runKeyHash{x, x*0x9e3779b97f4a7c15 ^ x>>29}
}

// add notes a run's key (a rolled-back batch leaves it: a false positive).
func (k *runKeys) add(h runKeyHash) {
	last := &k.blooms[len(k.blooms)-1]
	if last.n >= last.cap {
		k.blooms = append(k.blooms, newBloom(2*last.cap))
		last = &k.blooms[len(k.blooms)-1]
	}
	h1, h2 := h[0], h[1]
	block := last.block(h1)
	for i := range uint64(runKeyHashes) {
		b := (h2 >> (9 * i)) & 511
		block[b/64] |= 1 << (b % 64)
	}
	last.n++
}

// block is the 512 bits (a cache line) that hold a key's bits: one
// memory read per key and filter rather than one per hash.
func (f *bloom) block(h1 uint64) []uint64 {
	i := (h1 % uint64(len(f.bits)/8)) * 8
	return f.bits[i : i+8 : i+8]
}

// mayHave is false when no run has the key.
func (k *runKeys) mayHave(h runKeyHash) bool {
	h1, h2 := h[0], h[1]
	for f := range k.blooms {
		block := k.blooms[f].block(h1)
		found := true
		for i := range uint64(runKeyHashes) {
			if b := (h2 >> (9 * i)) & 511; block[b/64]&(1<<(b%64)) == 0 {
				found = false
				break
			}
		}
		if found {
			return true
		}
	}
	return false
}
