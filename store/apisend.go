package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
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

// APISend is one API send of a group commit: its request and its
// rendered messages.
type APISend struct {
	Req  APIRequest
	Msgs []Message
	// Templates are the template versions Msgs were rendered from, kept
	// with the job (Job.Templates).
	Templates []TemplateRef
}

// APIResult is what became of one APISend: its job and message ids, and
// whether it replayed an earlier request with the same key; or the error
// that refused it alone (ErrKeyReused, or a failed insert, rolled back to
// before this send without touching the others).
type APIResult struct {
	Job    Job
	IDs    []int64
	Replay bool
	Err    error
}

const (
	apiKeyLookupSQL = `SELECT job_id, request_hash FROM api_requests WHERE partner = ? AND key = ?`
	apiKeyInsertSQL = `INSERT INTO api_requests (partner, key, request_hash, job_id, created_at) VALUES (?, ?, ?, ?, ?)`
)

// apiCommitHook, when set, runs just before a group's commit; an error
// fails the commit (SetAPICommitHook).
type apiCommitHook = func() error

// SetAPICommitHook makes every later CreateAPIJobs call fn just before its
// commit; an error from fn rolls the whole group back and is returned as
// the commit's error. For tests of "stored before answered"; nil removes
// the hook.
func (s *Store) SetAPICommitHook(fn func() error) {
	if fn == nil {
		s.apiHook.Store(nil)
		return
	}
	s.apiHook.Store(&fn)
}

// apiHookSlot holds the hook; the zero value has none.
type apiHookSlot = atomic.Pointer[apiCommitHook]

// CreateAPIJob stores one API send; see CreateAPIJobs.
func (s *Store) CreateAPIJob(ctx context.Context, req APIRequest, msgs []Message) (job Job, ids []int64, replay bool, err error) {
	res, err := s.CreateAPIJobs(ctx, []APISend{{Req: req, Msgs: msgs}})
	if err != nil {
		return Job{}, nil, false, err
	}
	r := res[0]
	return r.Job, r.IDs, r.Replay, r.Err
}

// CreateAPIJobs stores several API sends in one transaction (a group
// commit: concurrent requests share the commit's cost), each as its own
// transactional job with its messages and, when the request carries a key,
// the key. A retried request (same partner, key and hash, whether stored
// earlier or earlier in the same group) creates nothing and returns the
// first job and its message ids with Replay; the same key with another
// request is ErrKeyReused. A send that fails is rolled back alone (a
// savepoint each) and reported in its result. The error is the group's:
// when it is not nil nothing was stored and no result holds.
func (s *Store) CreateAPIJobs(ctx context.Context, sends []APISend) ([]APIResult, error) {
	now := time.Now()
	jobs := make([]*smallJob, len(sends))
	var grouped []*smallJob // written with the group's statements (apisend_group.go)
	qs := []string{apiKeyLookupSQL, apiKeyInsertSQL}
	for i, sd := range sends {
		j := Job{Partner: sd.Req.Partner, Source: SourceAPI, Priority: PriorityTransactional, Status: JobQueued, Total: len(sd.Msgs), Templates: sd.Templates}
		if groupable(sd) {
			jobs[i] = &smallJob{job: j, msgs: sd.Msgs, now: now, grouped: true}
			grouped = append(grouped, jobs[i])
			continue
		}
		jobs[i] = s.newSmallJob(j, sd.Msgs, now)
		qs = append(qs, jobs[i].queries()...)
	}
	if len(grouped) == 1 { // alone, its own four statements are cheaper
		*grouped[0] = *s.newSmallJob(grouped[0].job, grouped[0].msgs, now)
		qs = append(qs, grouped[0].queries()...)
		grouped = nil
	}
	if len(grouped) > 0 {
		qs = append(qs, groupQueries(grouped)...)
	}
	if err := s.prepare(ctx, qs...); err != nil {
		return nil, err
	}
	out, err := s.createAPIJobsTx(ctx, jobs, sends, grouped, false)
	if errors.Is(err, errRetryWithSavepoints) {
		// Each send on its own, in a savepoint, to fail only the bad one.
		qs = qs[:0]
		for _, sj := range grouped {
			*sj = *s.newSmallJob(sj.job, sj.msgs, now)
			qs = append(qs, sj.queries()...)
		}
		if err := s.prepare(ctx, qs...); err != nil {
			return nil, err
		}
		out, err = s.createAPIJobsTx(ctx, jobs, sends, nil, true)
	}
	return out, err
}

// errRetryWithSavepoints says a group without savepoints had a send fail
// part-way: the group is rolled back and stored again, each send in a
// savepoint of its own.
var errRetryWithSavepoints = errors.New("a send failed part-way")

// createAPIJobsTx is CreateAPIJobs' transaction. The grouped sends are
// written first, together. A savepoint per send (two more statements each,
// a quarter of a single send's) is needed only when a send fails after it
// wrote something, which takes a failing insert: so a group first goes
// without them, and only when such a failure happens (not a reused key,
// found before any write) is it stored again with them, nothing grouped.
func (s *Store) createAPIJobsTx(ctx context.Context, jobs []*smallJob, sends []APISend, grouped []*smallJob, savepoints bool) ([]APIResult, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make([]APIResult, len(sends))
	if len(grouped) > 0 {
		jobIDs, msgIDs, err := s.insertGroupTx(ctx, tx, grouped)
		if err != nil {
			return nil, errRetryWithSavepoints
		}
		k := 0
		for i, sj := range jobs {
			if sj.grouped {
				job := sj.job
				job.ID = jobIDs[k]
				out[i] = APIResult{Job: job, IDs: msgIDs[k]}
				k++
			}
		}
	}
	for i, sd := range sends {
		if jobs[i].grouped && !savepoints {
			continue
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT api_send`); err != nil {
				return nil, err
			}
		}
		out[i] = s.createAPIJobTx(ctx, tx, sd.Req, jobs[i])
		switch err := out[i].Err; {
		case savepoints:
			if err != nil {
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO api_send`); err != nil {
					return nil, err
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE api_send`); err != nil {
				return nil, err
			}
		case err != nil && !errors.Is(err, ErrKeyReused) && len(sends) > 1:
			return nil, errRetryWithSavepoints
		}
	}
	if len(sends) == 1 && out[0].Err != nil {
		return out, nil // the deferred rollback undoes whatever it did
	}
	if hook := s.apiHook.Load(); hook != nil {
		if err := (*hook)(); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return out, nil // the caller nudges the sender, as it always has
}

// createAPIJobTx is one send of CreateAPIJobs, in tx.
func (s *Store) createAPIJobTx(ctx context.Context, tx *sql.Tx, req APIRequest, sj *smallJob) APIResult {
	if req.Key != "" {
		st, err := s.txStmt(ctx, tx, apiKeyLookupSQL)
		if err != nil {
			return APIResult{Err: err}
		}
		var jobID int64
		var hash string
		err = st.QueryRowContext(ctx, req.Partner, req.Key).Scan(&jobID, &hash)
		switch {
		case err == nil && hash != req.RequestHash:
			return APIResult{Err: ErrKeyReused}
		case err == nil:
			ids, err := messageIDsTx(ctx, tx, jobID)
			if err != nil {
				return APIResult{Err: err}
			}
			return APIResult{Job: Job{ID: jobID, Partner: req.Partner, Source: SourceAPI}, IDs: ids, Replay: true}
		case !errors.Is(err, sql.ErrNoRows):
			return APIResult{Err: fmt.Errorf("cannot look up idempotency key: %w", err)}
		}
	}
	id, ids, err := s.insertSmallJobTx(ctx, tx, sj)
	if err != nil {
		return APIResult{Err: err}
	}
	if req.Key != "" {
		st, err := s.txStmt(ctx, tx, apiKeyInsertSQL)
		if err != nil {
			return APIResult{Err: err}
		}
		if _, err := st.ExecContext(ctx, req.Partner, req.Key, req.RequestHash, id, ms(sj.now)); err != nil {
			return APIResult{Err: fmt.Errorf("cannot record idempotency key: %w", err)}
		}
	}
	job := sj.job
	job.ID = id
	return APIResult{Job: job, IDs: ids}
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
