package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FileClaim is one node's hold on a file of a partner home while it
// ingests it, so that nodes sharing the homes ingest each file once. A
// node renews its claims while it works; a claim whose lease ran out
// belongs to a node that died, and another node takes it over.
type FileClaim struct {
	// Partner and Name (relative to the partner's home) say which file.
	Partner, Name string
	// Version tells this upload of the file from another upload of the
	// same name without reading it (its size, modification time and
	// inode; "" when the file could not be looked at): two nodes claiming
	// one version are after one file.
	Version string
	// SHA256 is the content's hash, once the claiming node's one read of
	// the file computed it ("" until then).
	SHA256 string
	// Node is the claiming node's id.
	Node string
	// LeaseUntil is when the claim lapses unless renewed.
	LeaseUntil time.Time
}

// ClaimOutcome says what ClaimFile decided.
type ClaimOutcome int

const (
	// ClaimTaken: the file was free (or already this node's).
	ClaimTaken ClaimOutcome = iota
	// ClaimTakenOver: the file was claimed by a node whose lease ran out;
	// what that node left of its ingest must be removed first
	// (AbandonIngestOf).
	ClaimTakenOver
	// ClaimHeld: a live node holds the same version of the file: it is
	// ingesting this very upload.
	ClaimHeld
	// ClaimBusy: a live node holds another version of the name (an older
	// upload of it): try again once it is done.
	ClaimBusy
)

// claimTries bounds the compare-and-swap loop of ClaimFile; each miss
// means another node changed the row in between, which is rare.
const claimTries = 5

// ClaimFile claims c.Partner's c.Name for c.Node until c.LeaseUntil. It is
// a compare-and-swap on the claim row, the same on both engines: a row
// inserted only when absent, or updated only when it still holds what was
// read (an expired lease, or this node's own claim).
func (s *Store) ClaimFile(ctx context.Context, c FileClaim, now time.Time) (ClaimOutcome, FileClaim, error) {
	for range claimTries {
		var cur FileClaim
		var lease int64
		err := s.writer.QueryRowContext(ctx, `SELECT version, sha256, node, lease_until FROM file_claims WHERE partner = ? AND name = ?`,
			c.Partner, c.Name).Scan(&cur.Version, &cur.SHA256, &cur.Node, &lease)
		if errors.Is(err, sql.ErrNoRows) {
			res, err := s.writer.ExecContext(ctx, `INSERT INTO file_claims (partner, name, version, sha256, node, claimed_at, lease_until)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (partner, name) DO NOTHING`,
				c.Partner, c.Name, c.Version, c.SHA256, c.Node, ms(now), ms(c.LeaseUntil))
			if err != nil {
				return 0, FileClaim{}, fmt.Errorf("cannot claim %s of partner %s: %w", c.Name, c.Partner, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				return ClaimTaken, c, nil
			}
			continue
		}
		if err != nil {
			return 0, FileClaim{}, fmt.Errorf("cannot read the claim on %s of partner %s: %w", c.Name, c.Partner, err)
		}
		cur.Partner, cur.Name, cur.LeaseUntil = c.Partner, c.Name, fromMS(lease)
		outcome := ClaimTaken
		switch {
		case cur.Node == c.Node:
		case lease <= ms(now):
			outcome = ClaimTakenOver
		case c.Version != "" && cur.Version == c.Version:
			return ClaimHeld, cur, nil
		default:
			return ClaimBusy, cur, nil
		}
		res, err := s.writer.ExecContext(ctx, `UPDATE file_claims SET version = ?, sha256 = ?, node = ?, claimed_at = ?, lease_until = ?
			WHERE partner = ? AND name = ? AND node = ? AND lease_until = ?`,
			c.Version, c.SHA256, c.Node, ms(now), ms(c.LeaseUntil), c.Partner, c.Name, cur.Node, lease)
		if err != nil {
			return 0, FileClaim{}, fmt.Errorf("cannot claim %s of partner %s: %w", c.Name, c.Partner, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return outcome, cur, nil
		}
	}
	return ClaimBusy, FileClaim{}, nil
}

// ReleaseFileClaim drops node's claim on a file once its ingest ended
// (whatever it decided). A claim taken over meanwhile is not touched.
func (s *Store) ReleaseFileClaim(ctx context.Context, partner, name, node string) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM file_claims WHERE partner = ? AND name = ? AND node = ?`, partner, name, node); err != nil {
		return fmt.Errorf("cannot release the claim on %s of partner %s: %w", name, partner, err)
	}
	return nil
}

// SetFileClaimContent records in node's claim on partner's name the
// content's SHA-256, once the node's read of the file computed it. A
// claim taken over meanwhile is not touched.
func (s *Store) SetFileClaimContent(ctx context.Context, partner, name, node, sha256 string) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE file_claims SET sha256 = ? WHERE partner = ? AND name = ? AND node = ?`,
		sha256, partner, name, node); err != nil {
		return fmt.Errorf("cannot record the content of %s of partner %s in its claim: %w", name, partner, err)
	}
	return nil
}

// RenewFileClaims extends every claim of node to until: the node's
// heartbeat while it works.
func (s *Store) RenewFileClaims(ctx context.Context, node string, until time.Time) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `UPDATE file_claims SET lease_until = ? WHERE node = ?`, ms(until), node)
	if err != nil {
		return 0, fmt.Errorf("cannot renew file claims: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ExpiredFileClaims lists up to limit claims whose lease ran out before
// now, oldest first: files a dead node left, for another to take over.
func (s *Store) ExpiredFileClaims(ctx context.Context, now time.Time, limit int) ([]FileClaim, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT partner, name, version, sha256, node, lease_until FROM file_claims
		WHERE lease_until <= ? ORDER BY lease_until LIMIT ?`, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list expired file claims: %w", err)
	}
	defer rows.Close()
	var out []FileClaim
	for rows.Next() {
		var c FileClaim
		var lease int64
		if err := rows.Scan(&c.Partner, &c.Name, &c.Version, &c.SHA256, &c.Node, &lease); err != nil {
			return nil, err
		}
		c.LeaseUntil = fromMS(lease)
		out = append(out, c)
	}
	return out, rows.Err()
}

// FileClaimOf returns the claim on a file, or ErrNotFound.
func (s *Store) FileClaimOf(ctx context.Context, partner, name string) (FileClaim, error) {
	c := FileClaim{Partner: partner, Name: name}
	var lease int64
	err := s.reader.QueryRowContext(ctx, `SELECT version, sha256, node, lease_until FROM file_claims WHERE partner = ? AND name = ?`,
		partner, name).Scan(&c.Version, &c.SHA256, &c.Node, &lease)
	if errors.Is(err, sql.ErrNoRows) {
		return FileClaim{}, ErrNotFound
	}
	if err != nil {
		return FileClaim{}, fmt.Errorf("cannot read the claim on %s of partner %s: %w", name, partner, err)
	}
	c.LeaseUntil = fromMS(lease)
	return c, nil
}

// ErrClaimLost fails a job's commit when its file's claim is no longer the
// writing node's: another node took the file over, and its ingest wins.
var ErrClaimLost = errors.New("the file's claim was taken over by another node")

// HoldClaim makes the job's Commit check, inside its transaction, that
// node still holds the claim on partner's name: a node that stalled past
// its lease and lost the file to another node cannot queue it a second
// time. The check locks the claim row, so a takeover waits for the commit
// (and then finds the file queued).
func (w *JobWriter) HoldClaim(partner, name, node string) {
	w.claim = &FileClaim{Partner: partner, Name: name, Node: node}
}

// checkClaimTx is HoldClaim's check, run in the commit's transaction.
func (w *JobWriter) checkClaimTx(ctx context.Context, tx *sql.Tx) error {
	if w.claim == nil {
		return nil
	}
	return checkClaimRowTx(ctx, tx, *w.claim)
}

// checkClaimRowTx fails with ErrClaimLost unless c.Node still holds the
// claim on c.Partner's c.Name. The no-op update locks the claim row until
// the transaction ends, so a takeover waits for the commit and then finds
// the file's work done.
func checkClaimRowTx(ctx context.Context, tx *sql.Tx, c FileClaim) error {
	res, err := tx.ExecContext(ctx, `UPDATE file_claims SET lease_until = lease_until WHERE partner = ? AND name = ? AND node = ?`,
		c.Partner, c.Name, c.Node)
	if err != nil {
		return fmt.Errorf("cannot check the claim on %s: %w", c.Name, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("cannot apply %s: %w", c.Name, ErrClaimLost)
	}
	return nil
}

// claimFenceKey keys the claim of WithClaimFence in a context.
type claimFenceKey struct{}

// WithClaimFence returns ctx carrying node's claim on partner's name: the
// transaction that applies a suppress/, lists/ or events/ file under ctx
// (ApplySuppressionFile, ListLoad.Commit, AcceptEventsFile) commits only
// while the claim is still node's, checked inside it as HoldClaim does for
// a job. It travels in the context because an events/ file is applied
// through the workflow engine, which has no part in claims.
func WithClaimFence(ctx context.Context, partner, name, node string) context.Context {
	return context.WithValue(ctx, claimFenceKey{}, FileClaim{Partner: partner, Name: name, Node: node})
}

// checkFenceTx is WithClaimFence's check in tx; no fence in ctx, no check.
func checkFenceTx(ctx context.Context, tx *sql.Tx) error {
	c, ok := ctx.Value(claimFenceKey{}).(FileClaim)
	if !ok {
		return nil
	}
	return checkClaimRowTx(ctx, tx, c)
}

// AbandonIngestOf removes what an ingest of partner's name that a dead
// node cut short left behind: its jobs still "ingesting", with their
// messages, and its file records still "received". Call it after
// ClaimTakenOver and before reading the file again.
func (s *Store) AbandonIngestOf(ctx context.Context, partner, name string) error {
	ids, err := s.int64s(ctx, `SELECT id FROM jobs WHERE status = ? AND partner = ? AND file_name = ?`, JobIngesting, partner, name)
	if err != nil {
		return fmt.Errorf("cannot list the interrupted ingests of %s: %w", name, err)
	}
	for _, id := range ids {
		w := &JobWriter{s: s, jobID: id, closed: true}
		if err := w.Abort(ctx); err != nil {
			return err
		}
	}
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM files WHERE status = ? AND partner = ? AND name = ?`, FileReceived, partner, name); err != nil {
		return fmt.Errorf("cannot remove the interrupted file records of %s: %w", name, err)
	}
	return nil
}

// AbandonUnclaimedIngests is AbandonInterruptedIngests for a node sharing
// the database: on PostgreSQL it leaves alone the ingests of files another
// node holds a live claim on (they are in progress there), and a dead
// node's are taken over once its claims expire (AbandonIngestOf). On
// SQLite, the one node is the only writer: every claim is its own from
// before the stop, so they are dropped and every interrupted ingest goes.
// On PostgreSQL a list send started through the API, which has no file
// and no claim, is removed only when the node writing it is gone
// (AbandonDeadNodesListSends).
func (s *Store) AbandonUnclaimedIngests(ctx context.Context, now time.Time) (jobs, files int64, err error) {
	if !s.pg {
		if _, err := s.writer.ExecContext(ctx, `DELETE FROM file_claims`); err != nil {
			return 0, 0, fmt.Errorf("cannot drop old file claims: %w", err)
		}
		return s.AbandonInterruptedIngests(ctx)
	}
	const unclaimed = `NOT EXISTS (SELECT 1 FROM file_claims c WHERE c.partner = %s AND c.name = %s AND c.lease_until > ?)`
	// A job with no file (a list send through the API) has no claim to
	// tell a live node's from a dead one's: its node tells.
	if jobs, err = s.AbandonDeadNodesListSends(ctx, now); err != nil {
		return jobs, 0, err
	}
	ids, err := s.int64s(ctx, `SELECT id FROM jobs WHERE status = ? AND COALESCE(file_id, 0) <> 0 AND `+
		fmt.Sprintf(unclaimed, "jobs.partner", "jobs.file_name"), JobIngesting, ms(now))
	if err != nil {
		return 0, 0, fmt.Errorf("cannot list interrupted ingests: %w", err)
	}
	for _, id := range ids {
		w := &JobWriter{s: s, jobID: id, closed: true}
		if err := w.Abort(ctx); err != nil {
			return jobs, 0, err
		}
		jobs++
	}
	res, err := s.writer.ExecContext(ctx, `DELETE FROM files WHERE status = ? AND `+fmt.Sprintf(unclaimed, "files.partner", "files.name"), FileReceived, ms(now))
	if err != nil {
		return jobs, 0, fmt.Errorf("cannot remove interrupted file records: %w", err)
	}
	files, _ = res.RowsAffected()
	return jobs, files, nil
}

// AbandonDeadNodesListSends removes the list sends started through the
// API that a node gone from the database (stopped, or silent for
// NodeStale) left "ingesting": its client got no answer, and the sender
// never sees an ingesting job, so nothing else would ever remove it. A
// live node's send, this node's included, is left to finish. On SQLite
// the one node removes every interrupted ingest at start instead
// (AbandonInterruptedIngests), so this does nothing there.
func (s *Store) AbandonDeadNodesListSends(ctx context.Context, now time.Time) (int64, error) {
	if !s.pg {
		return 0, nil
	}
	ids, err := s.int64s(ctx, `SELECT id FROM jobs WHERE status = ? AND COALESCE(file_id, 0) = 0 AND node <> 0 AND node <> ?
		AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = jobs.node AND n.stopped_at IS NULL AND n.heartbeat_at >= ?)`,
		JobIngesting, s.NodeID(), ms(now.Add(-NodeStale)))
	if err != nil {
		return 0, fmt.Errorf("cannot list the list sends of stopped nodes: %w", err)
	}
	var n int64
	for _, id := range ids {
		w := &JobWriter{s: s, jobID: id, closed: true}
		if err := w.Abort(ctx); err != nil {
			return n, fmt.Errorf("cannot remove the list send of a stopped node: %w", err)
		}
		n++
	}
	return n, nil
}

// JobReported reports whether a job's result report was written: a node
// that claimed the report checks it again, another node may have written
// it since the listing.
func (s *Store) JobReported(ctx context.Context, id int64) (bool, error) {
	var at sql.NullInt64
	if err := s.writer.QueryRowContext(ctx, `SELECT reported_at FROM jobs WHERE id = ?`, id).Scan(&at); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return true, nil // gone: nothing to report
		}
		return false, fmt.Errorf("cannot read job %d: %w", id, err)
	}
	return at.Valid, nil
}

// int64s runs a query of one integer column on the writer.
func (s *Store) int64s(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := s.writer.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
