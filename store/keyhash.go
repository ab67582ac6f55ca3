package store

import (
	"database/sql/driver"
	"fmt"
	"math"

	"modernc.org/sqlite"
)

// On SQLite the two lookups an event makes by text, its id among the
// partner's (is it a repeat?) and its contact's latest run of a workflow
// (reentry, exits), go through tables of 64-bit hash keys rather than
// indexes on the text (migration 0060). Partners' event ids (UUIDs) and
// contacts come in random order, so every event inserted an entry on a
// random leaf page of both indexes, and each commit wrote most of those
// pages to the WAL again: four fifths of an event's writer time
// (workflow/BENCHMARKS.md, sessions 11 and 12).
//
// The keys are kept in two levels, as a log-structured merge tree keeps
// its runs. The recent level is in memory (keymem.go): the keys of the
// rows stored since their range of keys last settled, each found again
// from its row. The settled level is the tables event_keys and run_keys:
// while the recent level holds recentKeysMax keys or more, batches move
// its keys there, a range of keys at a time (keySlices) and in key order,
// and raise the range's mark in key_marks, the last row whose key it
// settled (migration 0061). A settled page is then written once per round
// of the ranges rather than once per commit, and no recent key is written
// at all: kept in tables (migration 0060), the recent keys' pages were
// rewritten by every commit, a quarter of an event's writer time
// (workflow/BENCHMARKS.md, session 13). A crash loses only the memory:
// the next batch reads the rows after the marks again. The writer's
// lookups read both levels; a reader of another connection reads the
// settled keys and the rows after the lowest mark (runsOfEmailSQLite).
// A row another tool inserted (another connection: the level is read
// again) is taken like dropgate's own, if its id is past the marks.

// A hash says nothing for sure, so every lookup reads the rows behind the
// keys it finds and compares their text: a collision (at 10⁸ events the
// odds of any are about 1 in 4,000) costs a read, never a wrong answer.
// The batches keep Bloom filters of both kinds of keys (events_runkeys.go),
// so that a new id or a contact without runs, most of them, is not looked
// up at all. PostgreSQL, whose nodes write at once, keeps its text indexes.

// keyHashOverride replaces keyHash in tests that need collisions.
var keyHashOverride func(parts []string) int64

// keyHash is FNV-1a over the parts, each ended by a zero byte, mixed by
// MurmurHash3's finalizer (FNV alone leaves similar strings' hashes
// close, which the Bloom filter of events_runkeys.go would feel). It is
// stored: it must never change.
func keyHash(parts ...string) int64 {
	if keyHashOverride != nil {
		return keyHashOverride(parts)
	}
	return fnvKeyHash(parts)
}

func fnvKeyHash(parts []string) int64 {
	h := uint64(14695981039346656037)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= 1099511628211
		}
		h *= 1099511628211 // the zero byte: ^= 0 changes nothing
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return int64(h)
}

// eventKeyHash is an event id's key.
func eventKeyHash(partner, eventID string) int64 { return keyHash(partner, eventID) }

// runKeyOf is the key of a run's contact.
func runKeyOf(partner, workflow, contact string) int64 { return keyHash(partner, workflow, contact) }

// dropgate_key(text, ...) is keyHash in SQL, for migration 0060 to fill
// the settled keys of the rows before it. Nothing in the schema calls it,
// so other SQLite tools still open and read the database.
func init() {
	err := sqlite.RegisterDeterministicScalarFunction("dropgate_key", -1,
		func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			parts := make([]string, len(args))
			for i, a := range args {
				switch v := a.(type) {
				case string:
					parts[i] = v
				case []byte:
					parts[i] = string(v)
				case nil:
				default:
					return nil, fmt.Errorf("dropgate_key: argument %d is %T, not text", i+1, a)
				}
			}
			return keyHash(parts...), nil
		})
	if err != nil {
		panic(fmt.Sprintf("cannot register dropgate_key: %v", err))
	}
}

// recentKeysMin is the fewest keys the recent level gathers before they
// are settled.
const recentKeysMin = 1 << 15

// recentKeysMax is how many keys the recent level holds before batches
// settle them, with about total keys in all: each round of the key ranges
// rewrites most settled pages, so the more keys a round moves the fewer
// writes a key costs, and the more memory the level takes (16 bytes a
// key, up to twice that with its arrays' room). At ~170 keys a page both
// are ~sqrt(total × 4,096): 32,768 keys at 262,144 in all (where
// recentKeysMin takes over), 200,000 (3–6 MB) at ten million. It is a
// variable for tests.
var recentKeysMax = func(total int64) int {
	return max(recentKeysMin, int(math.Sqrt(float64(total)*4096)))
}

// keySlices is how many ranges of keys settle in turn: a move takes one
// range (a sixteenth of the recent keys, into a sixteenth of the settled
// pages), so that no batch stalls the writer for a whole move.
const keySlices = 16

// runsOfKeySQL lists the runs of a contact key in both levels: the
// settled runs with the key, then the recent ones the writer found in
// memory (a JSON list of their ids).
const runsOfKeySQL = `SELECT run FROM run_keys WHERE hash = ? UNION ALL SELECT value FROM json_each(?)`

const markKeysSQL = `UPDATE key_marks SET upto = ? WHERE kind = ? AND slice = ?`

// settleKeys moves recent keys into the settled tables, one range of keys
// (keySlices) after the other, in key order (the tables' primary key),
// while the recent level holds recentKeysMax keys or more, in the batch's
// transaction, with the range's marks: a crash keeps every key in one
// level or the other, and a rollback has the level read again (ready).
// It runs last in a batch, on SQLite only: every row of the batch is
// written, and each range's mark is the batch's last row.
func (b *eventBatch) settleKeys() error {
	k := b.keys
	for range keySlices {
		if k.recentEvents.len()+k.recentRuns.len() < recentKeysMax(b.nextEv+b.nextRun) {
			return nil
		}
		slice := k.slice
		k.slice = (k.slice + 1) % keySlices
		for _, kind := range []int{eventKeyKind, runKeyKind} {
			level, t, upto := &k.recentEvents, &settledEventKeys, b.nextEv
			if kind == runKeyKind {
				level, t, upto = &k.recentRuns, &settledRunKeys, b.nextRun
			}
			entries := level.sorted(slice)
			args := make([]any, 0, 2*len(entries))
			for _, e := range entries {
				args = append(args, e.hash, e.id)
			}
			if err := b.flush(t, args, len(entries), nil); err != nil {
				return fmt.Errorf("cannot settle the recent keys: %w", err)
			}
			if _, err := b.stmt(markKeysSQL).ExecContext(b.ctx, upto, kind, slice); err != nil {
				return fmt.Errorf("cannot settle the recent keys: %w", err)
			}
			level.drop(slice)
			k.marks[kind][slice] = upto
		}
	}
	return nil
}
