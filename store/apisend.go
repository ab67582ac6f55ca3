package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// APIRequest identifies an API send for idempotency: the partner, the
// client's Idempotency-Key ("" for none) and a hash of the request body.
type APIRequest struct {
	Partner     string
	Key         string
	RequestHash string
}

// ErrKeyReused is returned when an Idempotency-Key comes back with a
// different request than the one it first created.
var ErrKeyReused = errors.New("idempotency key already used for a different request")

// CreateAPIJob stores an API send as one transactional job with its
// messages and, when the request carries a key, the key, all in one
// transaction. A retried request (same partner, key and hash) creates
// nothing and returns the first job and its message ids with replay true;
// the same key with another request is ErrKeyReused.
func (s *Store) CreateAPIJob(ctx context.Context, req APIRequest, msgs []Message) (job Job, ids []int64, replay bool, err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Job{}, nil, false, err
	}
	defer tx.Rollback()
	if req.Key != "" {
		var jobID int64
		var hash string
		err := tx.QueryRowContext(ctx, `SELECT job_id, request_hash FROM api_requests WHERE partner = ? AND key = ?`,
			req.Partner, req.Key).Scan(&jobID, &hash)
		switch {
		case err == nil && hash != req.RequestHash:
			return Job{}, nil, false, ErrKeyReused
		case err == nil:
			ids, err := messageIDsTx(ctx, tx, jobID)
			if err != nil {
				return Job{}, nil, false, err
			}
			return Job{ID: jobID, Partner: req.Partner, Source: SourceAPI}, ids, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return Job{}, nil, false, fmt.Errorf("cannot look up idempotency key: %w", err)
		}
	}
	job = Job{Partner: req.Partner, Source: SourceAPI, Priority: PriorityTransactional, Status: JobQueued, Total: len(msgs)}
	now := time.Now()
	id, err := s.insertJob(ctx, tx, job, now)
	if err != nil {
		return Job{}, nil, false, err
	}
	if ids, err = insertMessagesTx(ctx, tx, id, now, msgs); err != nil {
		return Job{}, nil, false, err
	}
	if req.Key != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_requests (partner, key, request_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)`,
			req.Partner, req.Key, req.RequestHash, id, ms(now)); err != nil {
			return Job{}, nil, false, fmt.Errorf("cannot record idempotency key: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Job{}, nil, false, err
	}
	job.ID = id
	return job, ids, false, nil
}

// messageIDsTx lists a job's message ids in insertion order.
func messageIDsTx(ctx context.Context, tx *sql.Tx, jobID int64) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM messages WHERE job_id = ? ORDER BY id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("cannot list messages of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
