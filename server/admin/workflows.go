package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropgate/dropgate/store"
)

// workflowSummary is one workflow in GET /api/v1/workflows.
type workflowSummary struct {
	Partner string         `json:"partner"`
	Name    string         `json:"name"`
	On      string         `json:"on"`
	ExitOn  []string       `json:"exit_on,omitempty"`
	Steps   int            `json:"steps"`
	Runs    map[string]int `json:"runs"`
}

// handleListWorkflows lists the workflows a caller may see, each with its
// runs counted by status.
func (s *Server) handleListWorkflows(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Workflows == nil {
		return writeJSON(w, http.StatusOK, map[string]any{"workflows": []workflowSummary{}})
	}
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	counts, err := s.opts.Store.RunCounts(r.Context(), partner)
	if err != nil {
		return err
	}
	out := []workflowSummary{}
	for _, wf := range s.opts.Workflows.Workflows(partner) {
		runs := counts[wf.Partner][wf.Name]
		if runs == nil {
			runs = map[string]int{}
		}
		out = append(out, workflowSummary{Partner: wf.Partner, Name: wf.Name, On: wf.On, ExitOn: wf.ExitOn, Steps: len(wf.Steps), Runs: runs})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partner != out[j].Partner {
			return out[i].Partner < out[j].Partner
		}
		return out[i].Name < out[j].Name
	})
	return writeJSON(w, http.StatusOK, map[string]any{"workflows": out})
}

// workflowOf is the partner and workflow a /workflows/{name} request is
// about: a partner key's own, or the admin's ?partner=. Another partner's
// workflow, like an unknown one, is not found.
func (s *Server) workflowOf(r *http.Request) (string, string, error) {
	partner, err := partnerScope(r)
	if err != nil {
		return "", "", err
	}
	if partner == "" {
		return "", "", errBadRequest("workflows belong to a partner: add ?partner=<name>")
	}
	name := r.PathValue("name")
	if s.opts.Workflows == nil || !s.opts.Workflows.Has(partner, name) {
		return "", "", errNotFound("workflow " + strconv.Quote(name))
	}
	return partner, name, nil
}

// handleListRuns pages through a workflow's runs by id (?after=<next_after>),
// optionally of one status, email or key; a page without next_after is
// the last.
func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) error {
	partner, name, err := s.workflowOf(r)
	if err != nil {
		return err
	}
	limit, after, err := afterPage(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	// A page reads a bounded window of run ids (store.ListRunsPage): it
	// may hold fewer runs than asked and still carry next_after.
	runs, next, err := s.opts.Store.ListRunsPage(r.Context(), store.RunFilter{Partner: partner, Workflow: name, Status: q.Get("status"),
		Email: q.Get("email"), Key: q.Get("key"), After: int64(after), Limit: limit})
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []store.Run{}
	}
	resp := map[string]any{"runs": runs}
	if next > 0 {
		resp["next_after"] = next
	}
	return writeJSON(w, http.StatusOK, resp)
}

// runPartner is the partner whose runs a caller may read ("" for admins).
func runPartner(r *http.Request) string {
	if p := principalFrom(r.Context()); !p.admin {
		return p.partner
	}
	return ""
}

// handleGetRun shows one run: its events, executed steps and messages.
func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errNotFound("run " + strconv.Quote(r.PathValue("id")))
	}
	run, err := s.opts.Store.RunOf(r.Context(), runPartner(r), id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("run " + strconv.FormatInt(id, 10))
	}
	if err != nil {
		return err
	}
	events, err := s.opts.Store.EventsOfRun(r.Context(), run)
	if err != nil {
		return err
	}
	steps, err := s.opts.Store.StepsOfRun(r.Context(), id)
	if err != nil {
		return err
	}
	messages := []store.Message{}
	for _, st := range steps {
		if st.MessageID == 0 {
			continue
		}
		m, err := s.opts.Store.Message(r.Context(), st.MessageID)
		if err != nil {
			return err
		}
		messages = append(messages, m)
	}
	if steps == nil {
		steps = []store.RunStep{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"run": run, "events": events, "steps": steps, "messages": messages})
}

// handleCancelRun cancels one waiting run by hand.
func (s *Server) handleCancelRun(w http.ResponseWriter, r *http.Request) error {
	partner, name, err := s.workflowOf(r)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errNotFound("run " + strconv.Quote(r.PathValue("id")))
	}
	run, changed, err := s.opts.Store.CancelRun(r.Context(), partner, name, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("run " + strconv.FormatInt(id, 10))
	}
	if err != nil {
		return err
	}
	if !changed {
		return &Error{Status: http.StatusConflict, Code: "run_ended", Message: "run " + strconv.FormatInt(id, 10) + " has already ended (" + run.Status + ")"}
	}
	s.logger.Info("workflow run cancelled", "partner", partner, "workflow", name, "run", id)
	return writeJSON(w, http.StatusOK, map[string]any{"run": run})
}

// handleCancelRunsByKey cancels every waiting run of a workflow with
// ?key=.
func (s *Server) handleCancelRunsByKey(w http.ResponseWriter, r *http.Request) error {
	partner, name, err := s.workflowOf(r)
	if err != nil {
		return err
	}
	key := r.URL.Query().Get("key")
	if key == "" {
		return errBadRequest("add ?key=<the key the runs carry> (or DELETE /api/v1/workflows/{name}/runs/{id})")
	}
	n, err := s.opts.Store.CancelRunsByKey(r.Context(), partner, name, key, s.now())
	if err != nil {
		return err
	}
	s.logger.Info("workflow runs cancelled", "partner", partner, "workflow", name, "key", key, "runs", n)
	return writeJSON(w, http.StatusOK, map[string]any{"cancelled": n})
}

// runsCollector reports workflow runs by partner, workflow and status at
// scrape time, from the database (a restart resets nothing).
type runsCollector struct {
	st     *store.Store
	logger *slog.Logger
	desc   *prometheus.Desc
}

var _ prometheus.Collector = runsCollector{}

func newRunsCollector(st *store.Store, logger *slog.Logger) runsCollector {
	return runsCollector{st: st, logger: logger, desc: prometheus.NewDesc("dropgate_workflow_runs",
		"Workflow runs, by partner, workflow and status (waiting, done, cancelled, suppressed, failed).", []string{"partner", "workflow", "status"}, nil)}
}

func (c runsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counts, err := c.st.RunCounts(ctx, "")
	if err != nil {
		c.logger.Warn("metrics: cannot count workflow runs", "err", err)
		return
	}
	for p, wfs := range counts {
		for w, byStatus := range wfs {
			for st, n := range byStatus {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), p, w, st)
			}
		}
	}
}
