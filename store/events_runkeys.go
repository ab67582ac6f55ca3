package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
// time, session 12). Both are built at the first batch, with the recent
// level of the keys (keyhash.go), by one read of the settled key tables
// and of the rows after the marks, and kept by the batches, the only
// writers of events and runs; a key they hold wrongly only costs the read.
//
// Only this store's writer connection writes on SQLite; another
// connection's commit (another process, a tool) changes the connection's
// PRAGMA data_version, and the filters and the recent level are built
// again before they are trusted. PostgreSQL, where other nodes start runs
// and store events, reads every contact and id.

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

// runKeys is the filters, the recent level of the keys (keymem.go) and
// what they were built from; mu is held by the batch that uses them
// (batches take the writer one at a time anyway).
type runKeys struct {
	mu    sync.Mutex
	built bool
	// stale: a batch that noted keys rolled back; the recent level is read
	// again, the filters kept (a key they hold wrongly costs a read).
	stale   bool
	version int64 // the writer connection's data_version when built
	conn    any   // that connection
	runs    filter
	events  filter
	// The recent keys of events and runs (those after their range's mark),
	// the marks (key_marks: every key of a range up to its mark's row is
	// settled) and the next range to settle.
	recentEvents, recentRuns keyLevel
	marks                    [2][keySlices]int64
	slice                    int
}

// The kinds of key_marks' rows.
const (
	eventKeyKind = 0
	runKeyKind   = 1
)

// filter is a chain of Bloom filters, each twice the one before.
type filter []bloom

// bloom is one filter of at most cap keys.
type bloom struct {
	bits   []uint64
	n, cap int
}

// ready returns the keys for a batch in tx on the writer's driver
// connection dc, built or built again when needed, locked until the
// batch's done is called with whether it committed: a batch that did not
// leaves the recent level to be read again (it may have settled keys or
// noted its own, and the same ids may come again for other rows), so
// that nothing a rollback undid is kept. Only that level: a batch that
// fails (a full disk) reads some ten thousand rows, not every key.
func (k *runKeys) ready(ctx context.Context, tx *sql.Tx, dc any) (*runKeys, func(committed bool), error) {
	k.mu.Lock()
	done := func(committed bool) {
		if !committed {
			k.stale = true
		}
		k.mu.Unlock()
	}
	var v int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		k.built = false
		k.mu.Unlock()
		return nil, nil, fmt.Errorf("cannot read the data version: %w", err)
	}
	var err error
	switch {
	case !k.built || v != k.version || dc != k.conn:
		err = k.build(ctx, tx)
	case k.stale:
		err = k.readLevels(ctx, tx, false)
	}
	if err != nil {
		k.built = false
		k.mu.Unlock()
		return nil, nil, err
	}
	k.version, k.conn = v, dc
	return k, done, nil
}

// build reads every settled key into the filters and the rows after the
// marks into the recent level (and the filters).
func (k *runKeys) build(ctx context.Context, tx *sql.Tx) error {
	if err := k.runs.fill(ctx, tx, "run_keys"); err != nil {
		return fmt.Errorf("cannot read the runs' contacts: %w", err)
	}
	if err := k.events.fill(ctx, tx, "event_keys"); err != nil {
		return fmt.Errorf("cannot read the events' ids: %w", err)
	}
	if err := k.readLevels(ctx, tx, true); err != nil {
		return err
	}
	k.built = true
	return nil
}

// readLevels reads the marks and the rows after them into the recent
// level, and into the filters when they are new. Filters kept after a
// rollback hold those keys already (each was added when a batch noted it,
// and a settle that rolled back removed none): added again at every
// failed batch (a full disk, a client retrying), they would fill and
// double again and again.
func (k *runKeys) readLevels(ctx context.Context, tx *sql.Tx, toFilters bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT kind, slice, upto FROM key_marks`)
	if err != nil {
		return fmt.Errorf("cannot read the key marks: %w", err)
	}
	k.marks = [2][keySlices]int64{}
	for rows.Next() {
		var kind, slice int
		var upto int64
		if err := rows.Scan(&kind, &slice, &upto); err != nil {
			rows.Close()
			return fmt.Errorf("cannot read the key marks: %w", err)
		}
		if kind >= 0 && kind < 2 && slice >= 0 && slice < keySlices {
			k.marks[kind][slice] = upto
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read the key marks: %w", err)
	}
	k.recentEvents, k.recentRuns = keyLevel{}, keyLevel{}
	err = k.readRecent(ctx, tx, eventKeyKind, `SELECT id, partner, event_id, '' FROM events WHERE id > ? AND event_id <> ''`,
		func(partner, id, _ string) int64 { return eventKeyHash(partner, id) }, toFilters)
	if err != nil {
		return fmt.Errorf("cannot read the recent events' ids: %w", err)
	}
	err = k.readRecent(ctx, tx, runKeyKind, `SELECT id, partner, workflow, contact FROM workflow_runs WHERE id > ?`, runKeyOf, toFilters)
	if err != nil {
		return fmt.Errorf("cannot read the recent runs' contacts: %w", err)
	}
	// The rotation goes on from the range settled longest ago (the one
	// a start reads the most rows for), not from the first.
	k.slice = 0
	for i := range keySlices {
		if k.marks[eventKeyKind][i]+k.marks[runKeyKind][i] < k.marks[eventKeyKind][k.slice]+k.marks[runKeyKind][k.slice] {
			k.slice = i
		}
	}
	k.stale = false
	return nil
}

// readRecent puts the keys of the rows after their range's mark in the
// recent level of their kind, and in its filter when toFilter.
func (k *runKeys) readRecent(ctx context.Context, tx *sql.Tx, kind int, q string, keyOf func(a, b, c string) int64, toFilter bool) error {
	level, f := &k.recentEvents, &k.events
	if kind == runKeyKind {
		level, f = &k.recentRuns, &k.runs
	}
	rows, err := tx.QueryContext(ctx, q, slices.Min(k.marks[kind][:]))
	if err != nil {
		return err
	}
	defer rows.Close()
	var id int64
	var a, b, c string
	for rows.Next() {
		if err := rows.Scan(&id, &a, &b, &c); err != nil {
			return err
		}
		if key := keyOf(a, b, c); id > k.marks[kind][sliceOf(key)] {
			level.add(key, id)
			if toFilter {
				f.add(key)
			}
		}
	}
	return rows.Err()
}

// fill makes f hold every key of a settled key table.
func (f *filter) fill(ctx context.Context, tx *sql.Tx, table string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return err
	}
	*f = filter{newBloom(max(runKeysMin, 2*n))}
	rows, err := tx.QueryContext(ctx, `SELECT hash FROM `+table)
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
