package store

import (
	"context"
	"database/sql"
	"fmt"
)

// On SQLite the writer connection is the database's only writer, so a
// transaction that reads a partner's contacts and then writes them (a
// list load resolving its rows, PutContact looking a contact up before
// inserting or merging it, an unsubscribe) sees nothing change under it.
// On PostgreSQL several nodes write at once: two loads of one partner
// could both find a key absent and both insert it, or one could merge
// attributes into a contact the other has just changed and write back a
// stale copy. lockPartnerContactsPG takes a transaction-scoped advisory
// lock on the partner's contacts, so those transactions of one partner
// follow one another across nodes as they do on one SQLite node; other
// partners' go on beside them.

// lockPartnerContactsPG locks the partner's contacts and memberships until
// tx ends (PostgreSQL only). The two-key form of the advisory lock does
// not share its key space with reserveIDs' one-key form; the first key
// hashes the schema, as schemaLockKey does.
func lockPartnerContactsPG(ctx context.Context, tx *sql.Tx, partner string) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(COALESCE(current_schema(), '') || ' dropgate contacts'), hashtext(?))`, partner); err != nil {
		return fmt.Errorf("cannot lock the contacts of %s: %w", partner, err)
	}
	return nil
}
