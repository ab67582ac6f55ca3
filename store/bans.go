package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DefenderBan is an address the login defender refuses until a time,
// shared by every node on the database.
type DefenderBan struct {
	// Addr is the remote IP address, without port.
	Addr string
	// Until is when the ban ends.
	Until time.Time
	// Failures is how many failed logins led to the ban.
	Failures int
	// Node is the node that made the ban.
	Node string
}

// PutBan records a ban; an address banned already keeps the later end.
func (s *Store) PutBan(ctx context.Context, b DefenderBan, now time.Time) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO defender_bans (addr, until_at, failures, node, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (addr) DO UPDATE SET until_at = CASE WHEN excluded.until_at > defender_bans.until_at THEN excluded.until_at ELSE defender_bans.until_at END,
			failures = excluded.failures, node = excluded.node, created_at = excluded.created_at`,
		b.Addr, ms(b.Until), b.Failures, b.Node, ms(now))
	if err != nil {
		return fmt.Errorf("cannot record the ban of %s: %w", b.Addr, err)
	}
	return nil
}

// BanOf returns the ban of addr in force at now, or ErrNotFound.
func (s *Store) BanOf(ctx context.Context, addr string, now time.Time) (DefenderBan, error) {
	b := DefenderBan{Addr: addr}
	var until int64
	err := s.reader.QueryRowContext(ctx, `SELECT until_at, failures, node FROM defender_bans WHERE addr = ? AND until_at > ?`,
		addr, ms(now)).Scan(&until, &b.Failures, &b.Node)
	if errors.Is(err, sql.ErrNoRows) {
		return DefenderBan{}, ErrNotFound
	}
	if err != nil {
		return DefenderBan{}, fmt.Errorf("cannot read the ban of %s: %w", addr, err)
	}
	b.Until = fromMS(until)
	return b, nil
}

// Bans lists the bans in force at now, soonest to end first, and removes
// the ended ones.
func (s *Store) Bans(ctx context.Context, now time.Time) ([]DefenderBan, error) {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM defender_bans WHERE until_at <= ?`, ms(now)); err != nil {
		return nil, fmt.Errorf("cannot remove ended bans: %w", err)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT addr, until_at, failures, node FROM defender_bans WHERE until_at > ? ORDER BY until_at, addr`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("cannot list bans: %w", err)
	}
	defer rows.Close()
	var out []DefenderBan
	for rows.Next() {
		var b DefenderBan
		var until int64
		if err := rows.Scan(&b.Addr, &until, &b.Failures, &b.Node); err != nil {
			return nil, err
		}
		b.Until = fromMS(until)
		out = append(out, b)
	}
	return out, rows.Err()
}

// AddLoginFailure records a failed login from addr at now and returns how
// many failures addr has since since, this one included: failures on
// every node count together. Failures older than since are dropped.
func (s *Store) AddLoginFailure(ctx context.Context, addr string, now, since time.Time) (int, error) {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM defender_failures WHERE addr = ? AND at <= ?`, addr, ms(since)); err != nil {
		return 0, fmt.Errorf("cannot prune login failures: %w", err)
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO defender_failures (addr, at) VALUES (?, ?)`, addr, ms(now)); err != nil {
		return 0, fmt.Errorf("cannot record a login failure: %w", err)
	}
	var n int
	if err := s.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM defender_failures WHERE addr = ? AND at > ?`, addr, ms(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count login failures: %w", err)
	}
	return n, nil
}

// ClearLoginFailures forgets addr's failures (it was just banned).
func (s *Store) ClearLoginFailures(ctx context.Context, addr string) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM defender_failures WHERE addr = ?`, addr); err != nil {
		return fmt.Errorf("cannot clear login failures: %w", err)
	}
	return nil
}

// PruneLoginFailures drops every failure at or before since, so addresses
// that failed once and went away do not pile up.
func (s *Store) PruneLoginFailures(ctx context.Context, since time.Time) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM defender_failures WHERE at <= ?`, ms(since)); err != nil {
		return fmt.Errorf("cannot prune login failures: %w", err)
	}
	return nil
}
