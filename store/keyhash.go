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
// its runs: a batch adds its keys to the small recent tables
// (event_keys_recent, run_keys_recent), whose few pages every commit
// rewrites anyway, and while they hold recentKeysMax keys or more the
// batches move them, a range of keys at a time and in key order, into the
// settled tables (event_keys, run_keys): a settled page is then written
// once per round of the ranges rather than once per commit. A lookup
// reads both levels. Only dropgate writes events and runs: a row another
// tool inserted would have no key.
//
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

// recentKeysMin is the fewest keys the recent tables gather before they
// are settled.
const recentKeysMin = 1 << 15

// recentKeysMax is how many keys the recent tables hold before batches
// settle them, with about total keys in all. Two costs meet there: each
// commit rewrites most recent pages (more the more they hold), and each
// round of the key ranges rewrites the settled pages (less often the more
// the recent ones hold). At ~170 keys a page and commits of a few
// thousand keys both are ~sqrt(total × 4,096) pages: 32,768 keys at
// 262,144 in all (where recentKeysMin takes over; BENCHMARKS.md, session
// 12: 8,192 did as well, 131,072 half as well), 200,000 at ten million.
// It is a variable for tests.
var recentKeysMax = func(total int64) int {
	return max(recentKeysMin, int(math.Sqrt(float64(total)*4096)))
}

// keySlices is how many ranges of keys settle in turn: a move takes one
// range (a sixteenth of the recent keys, into a sixteenth of the settled
// pages), so that no batch stalls the writer for a whole move.
const keySlices = 16

// runsOfKeySQL lists the runs of a contact key in both levels, the key
// given twice.
const runsOfKeySQL = `SELECT run FROM run_keys_recent WHERE hash = ? UNION ALL SELECT run FROM run_keys WHERE hash = ?`

const (
	settleEventKeysSQL = `INSERT INTO event_keys (hash, event) SELECT hash, event FROM event_keys_recent WHERE hash BETWEEN ? AND ?`
	settleRunKeysSQL   = `INSERT INTO run_keys (hash, run) SELECT hash, run FROM run_keys_recent WHERE hash BETWEEN ? AND ?`
	dropEventKeysSQL   = `DELETE FROM event_keys_recent WHERE hash BETWEEN ? AND ?`
	dropRunKeysSQL     = `DELETE FROM run_keys_recent WHERE hash BETWEEN ? AND ?`
	recentKeysSQL      = `SELECT (SELECT count(*) FROM event_keys_recent) + (SELECT count(*) FROM run_keys_recent)`
)

// settleKeys moves recent keys into the settled tables, one range of keys
// (keySlices) after the other, in key order (the tables' primary key),
// while the recent tables hold recentKeysMax keys or more, in the
// batch's transaction: a crash keeps every key in one level or the other.
// It runs on SQLite only, with the filters (events_runkeys.go), which
// count the recent keys and remember the next range.
func (b *eventBatch) settleKeys() error {
	k := b.keys
	if k == nil {
		return nil // not counted: a later batch settles them
	}
	k.recent += len(b.started) + b.evKeys
	for range keySlices {
		if k.recent < recentKeysMax(b.nextEv+b.nextRun) {
			return nil
		}
		lo := int64(uint64(k.slice) << 60) // the top 4 bits: keySlices ranges
		hi := lo + (1<<60 - 1)
		k.slice = (k.slice + 1) % keySlices
		for _, q := range []string{settleEventKeysSQL, dropEventKeysSQL, settleRunKeysSQL, dropRunKeysSQL} {
			res, err := b.stmt(q).ExecContext(b.ctx, lo, hi)
			if err != nil {
				return fmt.Errorf("cannot settle the recent keys: %w", err)
			}
			if q == dropEventKeysSQL || q == dropRunKeysSQL {
				n, _ := res.RowsAffected()
				k.recent -= int(n)
			}
		}
	}
	return nil
}
