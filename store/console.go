package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ConsoleSession is a signed-in browser of the status console.
type ConsoleSession struct {
	IDHash    string
	Admin     bool
	Partner   string
	CSRF      string
	ExpiresAt time.Time
}

// CreateConsoleSession stores a new console session.
func (s *Store) CreateConsoleSession(ctx context.Context, cs ConsoleSession) error {
	admin := 0
	if cs.Admin {
		admin = 1
	}
	_, err := s.writer.ExecContext(ctx, `INSERT INTO console_sessions (id_hash, admin, partner, csrf, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, cs.IDHash, admin, cs.Partner, cs.CSRF, ms(time.Now()), ms(cs.ExpiresAt))
	if err != nil {
		return fmt.Errorf("cannot store console session: %w", err)
	}
	// Expired sessions go when new ones come, so the table stays small.
	_, err = s.writer.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at < ?`, ms(time.Now()))
	return err
}

// ConsoleSessionByHash returns a session that has not expired at now, or
// ErrNotFound.
func (s *Store) ConsoleSessionByHash(ctx context.Context, idHash string, now time.Time) (ConsoleSession, error) {
	var cs ConsoleSession
	var admin int
	var expires int64
	err := s.reader.QueryRowContext(ctx, `SELECT id_hash, admin, partner, csrf, expires_at FROM console_sessions
		WHERE id_hash = ? AND expires_at > ?`, idHash, ms(now)).Scan(&cs.IDHash, &admin, &cs.Partner, &cs.CSRF, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return ConsoleSession{}, ErrNotFound
	}
	cs.Admin, cs.ExpiresAt = admin == 1, fromMS(expires)
	return cs, err
}

// DeleteConsoleSession signs a session out.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash string) error {
	_, err := s.writer.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash = ?`, idHash)
	return err
}

// ConsoleKey returns the key that signs console cookies, made once and kept
// in the database so sessions outlive a restart.
func (s *Store) ConsoleKey(ctx context.Context) ([]byte, error) {
	var v string
	err := s.writer.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'console_key'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		b := make([]byte, 32)
		rand.Read(b)
		v = hex.EncodeToString(b)
		if _, err := s.writer.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('console_key', ?) ON CONFLICT (key) DO NOTHING`, v); err != nil {
			return nil, fmt.Errorf("cannot store the console key: %w", err)
		}
		err = s.writer.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'console_key'`).Scan(&v)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the console key: %w", err)
	}
	return hex.DecodeString(v)
}

// ChannelMinute is one channel's sent and failed messages in one minute.
type ChannelMinute struct {
	Channel      string
	Minute       time.Time
	Sent, Failed int
}

// ChannelMinutes returns the channels' per-minute tallies since a time
// (migration 0012), at most 1,440 rows per channel for a day. Naming the
// channels lets the primary key (channel, minute) seek to since in each,
// instead of reading every row kept.
func (s *Store) ChannelMinutes(ctx context.Context, channels []string, since time.Time) ([]ChannelMinute, error) {
	names, _ := json.Marshal(channels)
	rows, err := s.readQuery(ctx, `SELECT channel, minute, sent, failed FROM channel_minutes
		WHERE channel IN (SELECT value FROM json_each(?)) AND minute >= ? ORDER BY channel, minute`, string(names), since.Unix()/60)
	if err != nil {
		return nil, fmt.Errorf("cannot read channel minutes: %w", err)
	}
	defer rows.Close()
	var out []ChannelMinute
	for rows.Next() {
		var c ChannelMinute
		var minute int64
		if err := rows.Scan(&c.Channel, &minute, &c.Sent, &c.Failed); err != nil {
			return nil, err
		}
		c.Minute = time.Unix(minute*60, 0)
		out = append(out, c)
	}
	return out, rows.Err()
}

// PruneChannelMinutes drops per-minute tallies older than a time.
func (s *Store) PruneChannelMinutes(ctx context.Context, before time.Time) error {
	_, err := s.writer.ExecContext(ctx, `DELETE FROM channel_minutes WHERE minute < ?`, before.Unix()/60)
	return err
}

// FileCountsSince counts files created since a time, per status.
func (s *Store) FileCountsSince(ctx context.Context, partner string, since time.Time) (map[string]int, error) {
	rows, err := s.readQuery(ctx, `SELECT status, COUNT(*) FROM files
		WHERE created_at >= ? AND (? = '' OR partner = ?) GROUP BY status`, ms(since), partner, partner)
	if err != nil {
		return nil, fmt.Errorf("cannot count today's files: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// QueueDepth counts, per channel, the queued messages of unfinished jobs
// ("" partner: every partner's), from the live tallies.
func (s *Store) QueueDepth(ctx context.Context, partner string) (map[string]int, error) {
	rows, err := s.readQuery(ctx, `SELECT c.channel, SUM(c.n) FROM jobs j INDEXED BY jobs_unfinished
		CROSS JOIN job_counts c
		WHERE c.job_id = j.id AND j.finished_at IS NULL AND (? = '' OR j.partner = ?) AND c.status = ? GROUP BY c.channel`, partner, partner, MsgQueued)
	if err != nil {
		return nil, fmt.Errorf("cannot read queue depth: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ch string
		var n int
		if err := rows.Scan(&ch, &n); err != nil {
			return nil, err
		}
		out[ch] = n
	}
	return out, rows.Err()
}
