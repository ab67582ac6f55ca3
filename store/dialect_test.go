package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestPostgresSQLTranslatesOnlyWhatDiffersInSpelling(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`},
		{`UPDATE t SET a = ?2 WHERE id = ?1`, `UPDATE t SET a = $2 WHERE id = $1`},
		{`SELECT '?' || "q?" FROM t WHERE a = ?`, `SELECT '?' || "q?" FROM t WHERE a = $1`},
		{`SELECT id FROM jobs j INDEXED BY jobs_unfinished WHERE x = ?`, `SELECT id FROM jobs j WHERE x = $1`},
		{`WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) AND s = ?`,
			`WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text($1::json)) AND s = $2`},
		{`SELECT 'it''s' FROM t WHERE a = ?`, `SELECT 'it''s' FROM t WHERE a = $1`},
	} {
		if got := postgresSQL(c.in); got != c.want {
			t.Errorf("postgresSQL(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// Both engines must know the same migrations from PostgreSQL's baseline on,
// or one engine's schema would lag behind the code.
func TestEveryMigrationAfterThePostgresBaselineExistsForBothEngines(t *testing.T) {
	lite, err := loadMigrationsFrom(migrationDir(false))
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrationsFrom(migrationDir(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) == 0 {
		t.Fatal("no PostgreSQL migrations")
	}
	baseline := pg[0].version
	versions := func(ms []migration) (out []string) {
		for _, m := range ms {
			if m.version >= baseline {
				out = append(out, fmt.Sprint(m.version))
			}
		}
		return out
	}
	if a, b := fmt.Sprint(versions(lite)), fmt.Sprint(versions(pg)); a != b {
		t.Fatalf("migrations from %d on: SQLite has %s, PostgreSQL has %s", baseline, a, b)
	}
}

// Two stores in two schemas of one PostgreSQL database (two dropgates, or
// two tests side by side) reserve ids of the same table at once: the
// advisory lock one holds until its transaction ends does not make the
// other wait (schemaLockKey). With a key of the table's name alone, the
// second reserve waited out the first's transaction.
func TestReservingIDsInOneSchemaDoesNotWaitForAnother(t *testing.T) {
	if !onPostgres {
		t.Skip("PostgreSQL's advisory locks")
	}
	ctx := context.Background()
	a, b := openTestStore(t), openTestStore(t)
	tx, err := a.writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := reserveIDs(ctx, tx, "messages", 10); err != nil {
		t.Fatal(err)
	}
	// Held by a's transaction: b's reserve must not wait for it. A wait
	// would last the whole timeout (a blocked lock never answers early).
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := b.reserve(wait, "messages", 10); err != nil {
		t.Fatalf("the other schema's reserve: %v", err)
	}
	// The same schema's reserve still waits for it: the lock serves.
	same, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if _, err := a.reserve(same, "messages", 10); err == nil {
		t.Fatal("a reserve in the same schema did not wait for the transaction holding the lock")
	}
}
