package store

import (
	"context"
	"fmt"
)

// On SQLite the suppression list is held in memory (suppressionCache),
// kept current by this Store's own writes: the daemon is the database's
// only writer. On PostgreSQL other nodes add and remove suppressions too,
// and a cache of one node would go on sending to a recipient another node
// has just suppressed (an opt-out honoured on one node only). Each
// question is therefore asked of the database: one lookup of the
// suppressions_key index, prepared once per reader connection.

const isSuppressedPG = `SELECT EXISTS (SELECT 1 FROM suppressions WHERE partner = ? AND recipient = ? AND channel IN ('', ?))`

// isSuppressedPG is IsSuppressed on PostgreSQL.
func (s *Store) isSuppressedPG(ctx context.Context, partner, channel, recipient string) (bool, error) {
	st, err := s.readStmt(ctx, isSuppressedPG)
	if err != nil {
		return false, err
	}
	var yes bool
	if err := st.QueryRowContext(ctx, partner, recipient, channel).Scan(&yes); err != nil {
		return false, fmt.Errorf("cannot read the suppression list: %w", err)
	}
	return yes, nil
}
