package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/dropgate/dropgate/store"
)

// pathID reads a positive integer path value.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errBadRequest(name + " must be a positive integer, got " + strconv.Quote(r.PathValue(name)))
	}
	return id, nil
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errBadRequest(name + " must be a non-negative integer")
	}
	return n, nil
}

// Listing pages: ?limit= rows (default defaultPage, at most maxPage).
const (
	defaultPage = 100
	maxPage     = 1000
)

// pageParams reads the listing parameters ?limit= and ?before= (an id:
// only rows older than it; the cursor a full page answers as next_before).
func pageParams(r *http.Request) (limit int, before int64, err error) {
	if limit, err = pageLimit(r); err != nil {
		return 0, 0, err
	}
	b, err := queryInt(r, "before")
	return limit, int64(b), err
}

// afterPage reads the parameters of listings paged forward: ?limit= and
// ?after= (an id: only rows newer than it; a full page answers
// next_after).
func afterPage(r *http.Request) (limit int, after int64, err error) {
	if limit, err = pageLimit(r); err != nil {
		return 0, 0, err
	}
	a, err := queryInt(r, "after")
	return limit, int64(a), err
}

// pageLimit reads ?limit=: defaultPage when absent, at most maxPage.
func pageLimit(r *http.Request) (int, error) {
	limit, err := queryInt(r, "limit")
	if err != nil {
		return 0, err
	}
	if limit == 0 {
		limit = defaultPage
	}
	return min(limit, maxPage), nil
}

// withCursor adds next_before to a listing when its page is full: the
// client asks for ?before=<next_before> to get the next page.
func withCursor(resp map[string]any, n, limit int, lastID int64) map[string]any {
	if n == limit && n > 0 {
		resp["next_before"] = lastID
	}
	return resp
}

// partnerScope returns the partner filter a request may use: a partner token
// is pinned to itself; an admin may filter by ?partner=.
func partnerScope(r *http.Request) (string, error) {
	p := principalFrom(r.Context())
	q := r.URL.Query().Get("partner")
	if p.admin {
		return q, nil
	}
	if q != "" && q != p.partner {
		return "", errForbidden("a partner key can only see its own partner")
	}
	return p.partner, nil
}

// visibleJob loads a job and hides another partner's jobs as not found.
func (s *Server) visibleJob(ctx context.Context, id int64) (store.Job, error) {
	j, err := s.opts.Store.Job(ctx, id)
	if err != nil {
		return j, err
	}
	if p := principalFrom(ctx); !p.admin && p.partner != j.Partner {
		return store.Job{}, errNotFound("job")
	}
	return j, nil
}

var jobStatuses = map[string]bool{store.JobIngesting: true, store.JobQueued: true, store.JobSending: true,
	store.JobPaused: true, store.JobDone: true, store.JobCancelled: true}

// jobFilter is the job listing's filter from the request: the caller's
// partner scope, status, source and the page (the API and the console
// read the same query).
func jobFilter(r *http.Request) (store.JobFilter, error) {
	partner, err := partnerScope(r)
	if err != nil {
		return store.JobFilter{}, err
	}
	q := r.URL.Query()
	f := store.JobFilter{Partner: partner, Status: q.Get("status"), Source: q.Get("source")}
	if f.Status != "" && !jobStatuses[f.Status] {
		return store.JobFilter{}, errBadRequest("status must be one of ingesting, queued, sending, paused, done, cancelled")
	}
	if f.Limit, f.BeforeID, err = pageParams(r); err != nil {
		return store.JobFilter{}, err
	}
	return f, nil
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) error {
	f, err := jobFilter(r)
	if err != nil {
		return err
	}
	jobs, err := s.opts.Store.ListJobs(r.Context(), f)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []store.Job{}
	}
	var last int64
	if len(jobs) > 0 {
		last = jobs[len(jobs)-1].ID
	}
	return writeCompactJSON(w, http.StatusOK, withCursor(map[string]any{"jobs": jobs}, len(jobs), f.Limit, last))
}

// writeCompactJSON is writeJSON without indentation, for the answers read
// by programs on every poll: indenting a page of 100 jobs was more than half
// of its encoding.
func writeCompactJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeJSONBytes(w, status, append(b, '\n'))
}

// writeJSONBytes answers with b, a JSON document already encoded (by
// json.Marshal or by a handler's own encoder).
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	j, err := s.visibleJob(r.Context(), id)
	if err != nil {
		return err
	}
	out, err := s.withListSend(r.Context(), j) // listsends.go
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleJobMessages(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.visibleJob(r.Context(), id); err != nil {
		return err
	}
	limit, after, err := afterPage(r)
	if err != nil {
		return err
	}
	msgs := []store.Message{}
	err = s.opts.Store.JobMessages(r.Context(), id, r.URL.Query().Get("status"), int64(after), limit, func(m store.Message) error {
		msgs = append(msgs, m)
		return nil
	})
	if err != nil {
		return err
	}
	resp := map[string]any{"messages": msgs}
	if len(msgs) == limit {
		resp["next_after"] = msgs[len(msgs)-1].ID
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleJobAction(w http.ResponseWriter, r *http.Request, action string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.visibleJob(r.Context(), id); err != nil {
		return err
	}
	var act func(context.Context, int64) (store.Job, error)
	switch action {
	case "pause":
		act = s.opts.Store.PauseJob
	case "resume":
		act = s.opts.Store.ResumeJob
	case "cancel":
		act = s.opts.Store.CancelJob
	case "retry":
		act = s.opts.Store.RetryJob
	default:
		return errNotFound("job action " + strconv.Quote(action) + " (use pause, resume, cancel or retry)")
	}
	j, err := act(r.Context(), id)
	if err != nil {
		return err
	}
	if s.opts.Nudge != nil {
		s.opts.Nudge()
	}
	return writeJSON(w, http.StatusOK, j)
}

func (s *Server) handleGetMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	m, err := s.opts.Store.Message(r.Context(), id)
	if err != nil {
		return err
	}
	if p := principalFrom(r.Context()); !p.admin && p.partner != m.Partner {
		return errNotFound("message")
	}
	return writeJSON(w, http.StatusOK, m)
}
