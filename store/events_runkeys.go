package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// On SQLite a batch reads the latest run of each of its contacts, one
// seek of the contact keys per contact and workflow, a tenth of an
// event's writer time; most contacts that start a workflow (a signup)
// never ran it. runKeys holds a Bloom filter of the (partner, workflow,
// contact) key of every run: a contact it does not hold has no run of
// that workflow, and is not read. Likewise for the events' id keys: an
// event id the events' filter does not hold was never sent, and is not
// looked for (most are new; the look-up was a sixth of an event's writer
// time, session 12). Both are built by one read of the key tables
// (keyhash.go) at the first batch, and kept by the batches, the only
// writers of events and runs; a key they hold wrongly only costs the read.
//
// Only this store's writer connection writes on SQLite; another
// connection's commit (another process, a tool) changes the connection's
// PRAGMA data_version, and the filters are built again before they are
// trusted. PostgreSQL, where other nodes start runs and store events,
// reads every contact and id.

// runKeyBits is a filter's size per key it holds (with runKeyHashes
// hashes in one 512-bit block, about 1–2% false positives at its
// capacity: 1.25 bytes of memory per run and per event id). A full
// filter is not built again larger (a read of every key): a new one twice
// its size takes the next keys, and a key is looked for in each.
const (
	runKeyBits   = 10
	runKeyHashes = 7
)

// runKeysMin is the first filter's capacity (a variable for tests).
var runKeysMin = 1 << 20

// runKeys is the filters and what they were built from; mu is held by the
// batch that uses them (batches take the writer one at a time anyway).
type runKeys struct {
	mu      sync.Mutex
	built   bool
	version int64 // the writer connection's data_version when built
	conn    any   // that connection
	runs    filter
	events  filter
	// recent is how many keys the recent tables hold (keyhash.go): counted
	// when built, then by the batches; slice is the next range to settle.
	recent, slice int
}

// filter is a chain of Bloom filters, each twice the one before.
type filter []bloom

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

// build reads every key of both levels of the run and event keys.
func (k *runKeys) build(ctx context.Context, tx *sql.Tx) error {
	if err := tx.QueryRowContext(ctx, recentKeysSQL).Scan(&k.recent); err != nil {
		return fmt.Errorf("cannot count the recent keys: %w", err)
	}
	if err := k.runs.fill(ctx, tx, "run_keys"); err != nil {
		return fmt.Errorf("cannot read the runs' contacts: %w", err)
	}
	if err := k.events.fill(ctx, tx, "event_keys"); err != nil {
		return fmt.Errorf("cannot read the events' ids: %w", err)
	}
	k.built = true
	return nil
}

// fill makes f hold every key of a key table's two levels (table and
// table_recent).
func (f *filter) fill(ctx context.Context, tx *sql.Tx, table string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM `+table+`) + (SELECT count(*) FROM `+table+`_recent)`).Scan(&n); err != nil {
		return err
	}
	*f = filter{newBloom(max(runKeysMin, 2*n))}
	rows, err := tx.QueryContext(ctx, `SELECT hash FROM `+table+`_recent UNION ALL SELECT hash FROM `+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	var key int64
	for rows.Next() {
		if err := rows.Scan(&key); err != nil {
			return err
		}
		f.add(key)
	}
	return rows.Err()
}

func newBloom(capacity int) bloom {
	return bloom{bits: make([]uint64, (capacity*runKeyBits+511)/512*8), cap: capacity}
}

// A filter holds the stored keys themselves (keyhash.go: already hashes,
// so it is built from the key tables alone): the block from the key, the
// bits in it from a second hash of it (7 × 9 bits).
func bitsOf(key int64) (h1, h2 uint64) {
	x := uint64(key)
	return x, x*0x9e3779b97f4a7c15 ^ x>>29
}

// add notes a key (a rolled-back batch leaves it: a false positive).
func (f *filter) add(key int64) {
	last := &(*f)[len(*f)-1]
	if last.n >= last.cap {
		*f = append(*f, newBloom(2*last.cap))
		last = &(*f)[len(*f)-1]
	}
	h1, h2 := bitsOf(key)
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

// mayHave is false when the key was never added.
func (f filter) mayHave(key int64) bool {
	h1, h2 := bitsOf(key)
	for i := range f {
		block := f[i].block(h1)
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
