package store

import (
	"context"
	"fmt"
)

// StatusCount is how many rows of one kind are in one status.
type StatusCount struct {
	Kind    string // files | jobs | messages
	Channel string // messages only
	Status  string
	Count   int64
}

// StatusCounts counts files, jobs and messages per status (messages also
// per channel), for the metrics endpoint. It reads totals kept by triggers
// (status_totals, migration 0012) plus the live tally of unfinished jobs,
// so a scrape costs what is in progress, not everything ever sent (CROSS
// JOIN: walk the few unfinished jobs, then their tallies).
func (s *Store) StatusCounts(ctx context.Context) ([]StatusCount, error) {
	rows, err := s.readQuery(ctx, `
		SELECT kind, channel, status, SUM(n) FROM (
			SELECT kind, channel, status, n FROM status_totals
			UNION ALL SELECT 'messages', c.channel, c.status, c.n FROM jobs j INDEXED BY jobs_unfinished
				CROSS JOIN job_counts c WHERE c.job_id = j.id AND j.finished_at IS NULL) AS t
		GROUP BY kind, channel, status HAVING SUM(n) <> 0`)
	if err != nil {
		return nil, fmt.Errorf("cannot count statuses: %w", err)
	}
	defer rows.Close()
	var out []StatusCount
	for rows.Next() {
		var c StatusCount
		if err := rows.Scan(&c.Kind, &c.Channel, &c.Status, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// WaitingChannels counts, per channel, the messages of unfinished jobs that
// are still to be sent (queued or in flight), so that a start can warn
// about channels that are no longer configured.
func (s *Store) WaitingChannels(ctx context.Context) (map[string]int64, error) {
	rows, err := s.readQuery(ctx, `SELECT c.channel, SUM(c.n) FROM jobs j
		JOIN job_counts c ON c.job_id = j.id AND c.status IN (?, ?)
		WHERE j.status IN (?, ?, ?) GROUP BY c.channel HAVING SUM(c.n) > 0`,
		MsgQueued, MsgSending, JobQueued, JobSending, JobPaused)
	if err != nil {
		return nil, fmt.Errorf("cannot count waiting messages per channel: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var ch string
		var n int64
		if err := rows.Scan(&ch, &n); err != nil {
			return nil, err
		}
		out[ch] = n
	}
	return out, rows.Err()
}

// FilesAfter returns up to limit files with ids above afterID, in id
// order, without their errors: the metrics follow settled files through it.
func (s *Store) FilesAfter(ctx context.Context, afterID int64, limit int) ([]File, error) {
	rows, err := s.readQuery(ctx, `SELECT `+fileColumns+` FROM files WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list files after %d: %w", afterID, err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// MaxFileID is the highest file id, so the metrics start after the files
// that were settled before this process started.
func (s *Store) MaxFileID(ctx context.Context) (int64, error) {
	var id int64
	err := s.reader.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM files`).Scan(&id)
	return id, err
}
