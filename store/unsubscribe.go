package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// OptOut is what UnsubscribeEverywhere changed.
type OptOut struct {
	// Lists is how many list memberships went from subscribed to
	// unsubscribed.
	Lists int
	// Suppressed is false when the address was already suppressed on
	// every channel.
	Suppressed bool
}

// UnsubscribeEverywhere honours an opt-out (a one-click unsubscribe, an
// inbound STOP): in one transaction, every list membership of the
// partner's contact whose email or phone is recipient becomes
// unsubscribed, and recipient is suppressed on every channel with reason
// and source. recipient must be normalised as suppressions are stored
// (lower-case email, E.164 phone). Asking again changes nothing.
func (s *Store) UnsubscribeEverywhere(ctx context.Context, partner, recipient, reason, source string) (OptOut, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return OptOut{}, fmt.Errorf("cannot begin: %w", err)
	}
	defer tx.Rollback()
	// Members of member ranges get rows of their own first
	// (lists_ranges.go), which the UPDATE below then changes.
	ids, err := contactIDsTx(ctx, tx, partner, recipient)
	if err != nil {
		return OptOut{}, err
	}
	if err := cutContactRangesTx(ctx, tx, partner, ids); err != nil {
		return OptOut{}, err
	}
	// Contacts are partner-scoped, so their memberships are only of that
	// partner's lists; naming them lets each (list, contact) be found by
	// the primary key (list_members has no index by contact, 0019).
	res, err := tx.ExecContext(ctx, `
		UPDATE list_members SET status = 'unsubscribed', updated_at = ?3
		WHERE status <> 'unsubscribed' AND list_id IN (SELECT id FROM lists WHERE partner = ?1) AND contact_id IN (
			SELECT id FROM contacts WHERE partner = ?1 AND (email = ?2 OR phone = ?2))`,
		partner, recipient, ms(time.Now()))
	if err != nil {
		return OptOut{}, fmt.Errorf("cannot unsubscribe from the lists: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return OptOut{}, err
	}
	sups, err := addSuppressions(ctx, tx, []Suppression{{Partner: partner, Recipient: recipient, Reason: reason, Source: source}})
	if err != nil {
		return OptOut{}, err
	}
	if err := tx.Commit(); err != nil {
		return OptOut{}, fmt.Errorf("cannot store the unsubscribe: %w", err)
	}
	s.cacheAdd(sups)
	return OptOut{Lists: int(n), Suppressed: sups[0].Added}, nil
}

// Memberships returns the status of the partner's contact whose email or
// phone is recipient on each of its lists, by list name.
func (s *Store) Memberships(ctx context.Context, partner, recipient string) (map[string]string, error) {
	rows, err := s.reader.QueryContext(ctx, `
		SELECT l.name, m.status FROM contacts c
		JOIN lists l ON l.partner = c.partner
		JOIN list_members m ON m.list_id = l.id AND m.contact_id = c.id
		WHERE c.partner = ?1 AND (c.email = ?2 OR c.phone = ?2)
		UNION ALL
		SELECT l.name, r.status FROM contacts c
		JOIN lists l ON l.partner = c.partner
		JOIN list_member_ranges r ON r.list_id = l.id
			AND r.lo = (SELECT max(r2.lo) FROM list_member_ranges r2 WHERE r2.list_id = l.id AND r2.lo <= c.id)
		WHERE c.partner = ?1 AND (c.email = ?2 OR c.phone = ?2) AND r.hi >= c.id`, partner, recipient)
	if err != nil {
		return nil, fmt.Errorf("cannot read list memberships: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, status string
		if err := rows.Scan(&name, &status); err != nil {
			return nil, fmt.Errorf("cannot read list memberships: %w", err)
		}
		out[name] = status
	}
	return out, rows.Err()
}

// contactIDsTx returns the ids, ascending, of the partner's contacts whose
// email or phone is recipient.
func contactIDsTx(ctx context.Context, tx *sql.Tx, partner, recipient string) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM contacts WHERE partner = ?1 AND (email = ?2 OR phone = ?2) ORDER BY id`, partner, recipient)
	if err != nil {
		return nil, fmt.Errorf("cannot look up contacts: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("cannot look up contacts: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
