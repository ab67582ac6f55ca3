package admin

import (
	"encoding/csv"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/dropgate/dropgate/store"
)

// channelView is one channel's line on the overview.
type channelView struct {
	Name             string
	Queue            int
	SentHour, Failed int
	Rate, Configured float64
	Chart            template.HTML
}

func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principalFrom(ctx)
	partner := ""
	if !p.admin {
		partner = p.partner
	}
	now := s.now()
	queue, err := s.opts.Store.QueueDepth(ctx, partner)
	if err != nil {
		return err
	}
	var channels []channelView
	var series map[string]minuteSeries
	// The per-minute tallies are per channel, across partners: only an
	// admin sees them.
	if p.admin {
		if series, err = s.minutes.since(ctx, s.opts.Store, s.channelNames(), now.Add(-24*time.Hour-time.Minute), now); err != nil { // console_minutes.go
			return err
		}
	}
	for _, ch := range s.opts.Config.Channels {
		v := channelView{Name: ch.Name, Queue: queue[ch.Name], Configured: ch.Rate}
		if p.admin {
			lastMinute := now.Truncate(time.Minute).Add(-time.Minute)
			for m := range series[ch.Name].all() {
				if now.Sub(m.Minute) <= time.Hour {
					v.SentHour += m.Sent
					v.Failed += m.Failed
				}
				if m.Minute.Equal(lastMinute) {
					v.Rate = float64(m.Sent) / 60
				}
			}
			v.Chart = channelChart(series[ch.Name].all(), now)
		}
		channels = append(channels, v)
	}
	y, mo, d := now.Local().Date()
	today, err := s.opts.Store.FileCountsSince(ctx, partner, time.Date(y, mo, d, 0, 0, 0, 0, time.Local))
	if err != nil {
		return err
	}
	sessions := map[string]int{}
	var bans []Ban
	if p.admin {
		if s.opts.Metrics != nil && s.opts.Metrics.Sessions != nil {
			sessions = s.opts.Metrics.Sessions()
		}
		if s.opts.Bans != nil {
			bans = s.opts.Bans()
		}
	}
	jobs, err := s.opts.Store.ListJobs(ctx, store.JobFilter{Partner: partner, Limit: 10})
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "overview.html", pageData{Title: "Overview", Refresh: 10, Data: map[string]any{
		"Channels": channels, "Uploads": today[store.FileQueued] + today[store.FileRejected] + today[store.FileReceived],
		"Rejected": today[store.FileRejected], "Sessions": sessions, "Bans": bans, "Jobs": jobViews(jobs), "Now": now,
	}})
}

// jobView is a job with its progress, for the pages.
type jobView struct {
	store.Job
	Done, Percent int
}

func jobViews(jobs []store.Job) []jobView {
	out := make([]jobView, len(jobs))
	for i, j := range jobs {
		done := 0
		for st, n := range j.Counts {
			if st != store.MsgQueued && st != store.MsgSending && st != "held" {
				done += n
			}
		}
		pct := 100
		if j.Total > 0 {
			pct = done * 100 / j.Total
		}
		if j.Status == store.JobIngesting {
			pct = 0
		}
		out[i] = jobView{Job: j, Done: done, Percent: pct}
	}
	return out
}

func (s *Server) handleJobsPage(w http.ResponseWriter, r *http.Request) error {
	f, err := jobFilter(r)
	if err != nil {
		return err
	}
	f.Limit = min(f.Limit, 200)
	jobs, err := s.opts.Store.ListJobs(r.Context(), f)
	if err != nil {
		return err
	}
	var next int64
	if len(jobs) == f.Limit {
		next = jobs[len(jobs)-1].ID
	}
	return s.render(w, r, http.StatusOK, "jobs.html", pageData{Title: "Jobs", Refresh: 10, Data: map[string]any{
		"Jobs": jobViews(jobs), "Filter": f, "Next": next}})
}

func (s *Server) handleJobPage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	j, err := s.visibleJob(r.Context(), id)
	if err != nil {
		return err
	}
	var failed []store.Message
	err = s.opts.Store.JobMessages(r.Context(), id, store.MsgFailed, 0, 100, func(m store.Message) error {
		failed = append(failed, m)
		return nil
	})
	if err != nil {
		return err
	}
	var statuses []string
	for st := range j.Counts {
		statuses = append(statuses, st)
	}
	sort.Strings(statuses)
	refresh := 0
	if j.FinishedAt.IsZero() {
		refresh = 5
	}
	return s.render(w, r, http.StatusOK, "job.html", pageData{Title: "Job " + strconv.FormatInt(id, 10), Refresh: refresh, Data: map[string]any{
		"Job": jobViews([]store.Job{j})[0], "Statuses": statuses, "Failed": failed}})
}

// handleJobActionForm runs a job action from the job page's buttons and
// goes back to the page.
func (s *Server) handleJobActionForm(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.visibleJob(r.Context(), id); err != nil {
		return err
	}
	var err2 error
	switch r.PathValue("action") {
	case "pause":
		_, err2 = s.opts.Store.PauseJob(r.Context(), id)
	case "resume":
		_, err2 = s.opts.Store.ResumeJob(r.Context(), id)
	case "cancel":
		_, err2 = s.opts.Store.CancelJob(r.Context(), id)
	case "retry":
		_, err2 = s.opts.Store.RetryJob(r.Context(), id)
	default:
		return errNotFound("job action")
	}
	if err2 != nil {
		return err2
	}
	if s.opts.Nudge != nil {
		s.opts.Nudge()
	}
	http.Redirect(w, r, "/jobs/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
	return nil
}

// handleJobResult streams a job's result report, the same columns as
// reports/<file>.result.csv.
func (s *Server) handleJobResult(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.visibleJob(r.Context(), id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="job-`+strconv.FormatInt(id, 10)+`.result.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"line", "ref", "recipient", "status", "provider_id", "error", "sent_at"})
	row := make([]string, 7)
	err = s.opts.Store.JobMessages(r.Context(), id, "", 0, 0, func(m store.Message) error {
		sent := ""
		if !m.SentAt.IsZero() {
			sent = m.SentAt.UTC().Format(time.RFC3339)
		}
		row[0], row[1], row[2], row[3], row[4], row[5], row[6] = strconv.Itoa(m.Line), m.Ref, m.Recipient, m.Status, m.ProviderID, m.LastError, sent
		return cw.Write(row)
	})
	cw.Flush()
	if err != nil {
		s.logger.Warn("result report cut short", "job", id, "err", err)
	}
	return nil
}

func (s *Server) handleFilesPage(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	f := store.FileFilter{Partner: partner, Status: r.URL.Query().Get("status")}
	if f.Status != "" && !fileStatuses[f.Status] {
		return errBadRequest("status must be one of received, rejected, queued")
	}
	if f.Limit, f.BeforeID, err = pageParams(r); err != nil {
		return err
	}
	f.Limit = min(f.Limit, 200)
	files, err := s.opts.Store.ListFiles(r.Context(), f)
	if err != nil {
		return err
	}
	var next int64
	if len(files) == f.Limit {
		next = files[len(files)-1].ID
	}
	return s.render(w, r, http.StatusOK, "files.html", pageData{Title: "Files", Data: map[string]any{"Files": files, "Filter": f, "Next": next}})
}

func (s *Server) handleFilePage(w http.ResponseWriter, r *http.Request) error {
	f, err := s.fileWithErrors(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "file.html", pageData{Title: f.Name, Data: f})
}

func (s *Server) handleTemplatesPage(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	ts, err := s.opts.Store.TemplatePage(r.Context(), partner, "", "", maxPage)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "templates.html", pageData{Title: "Templates", Data: ts})
}

func (s *Server) handleTemplatePage(w http.ResponseWriter, r *http.Request) error {
	partner := r.PathValue("partner")
	if p := principalFrom(r.Context()); !p.admin && p.partner != partner {
		return errNotFound("template")
	}
	vs, err := s.opts.Store.TemplateVersions(r.Context(), partner, r.PathValue("name"), 0, 50)
	if err != nil {
		return err
	}
	var sources []templateJSON
	for _, v := range vs {
		sources = append(sources, templateJSON{Template: v, Source: v.Source})
	}
	return s.render(w, r, http.StatusOK, "template.html", pageData{Title: "Template " + r.PathValue("name"), Data: sources})
}
