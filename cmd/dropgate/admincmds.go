package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cliJob is a job as the API answers it.
type cliJob struct {
	ID         int64          `json:"id"`
	Partner    string         `json:"partner"`
	Source     string         `json:"source"`
	FileName   string         `json:"file_name"`
	Status     string         `json:"status"`
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
}

// ended is how many of the job's messages have an outcome.
func (j cliJob) ended() int {
	n := 0
	for st, c := range j.Counts {
		if st != "queued" && st != "sending" && st != "held" {
			n += c
		}
	}
	return n
}

func (j cliJob) percent() int {
	if j.Total == 0 {
		return 100
	}
	return j.ended() * 100 / j.Total
}

const jobsUsage = `Usage: dropgate jobs [ID] [--follow] [--status S] [--partner P] [--json] [--addr A] [--token T] [--config FILE]

Lists the running daemon's jobs, newest first, or shows one job. With --follow, draws the job's
progress with its rate and ETA until it ends.

`

func runJobs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("jobs", jobsUsage, stderr)
	var cf clientFlags
	cf.register(fs)
	follow := fs.Bool("follow", false, "follow one job's progress until it ends")
	every := fs.Duration("interval", time.Second, "how often --follow asks")
	status := fs.String("status", "", "only jobs in this status")
	partner := fs.String("partner", "", "only this partner's jobs (admin token)")
	limit := fs.Int("limit", 50, "how many jobs to list")
	pos, help, err := splitArgs(fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) > 1 {
		return &usageError{"give at most one job id"}
	}
	c, err := cf.client(getenv)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		if *follow {
			return &usageError{"--follow needs a job id"}
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		if *status != "" {
			q.Set("status", *status)
		}
		if *partner != "" {
			q.Set("partner", *partner)
		}
		var resp struct{ Jobs []cliJob }
		raw, err := c.do(ctx, "GET", "/api/v1/jobs?"+q.Encode(), nil, &resp)
		if err != nil {
			return err
		}
		if cf.json {
			_, err := stdout.Write(raw)
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tPARTNER\tSOURCE\tFILE\tPROGRESS\tCREATED")
		for _, j := range resp.Jobs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d%% (%d/%d)\t%s\n", j.ID, j.Status, j.Partner, j.Source, dash(j.FileName),
				j.percent(), j.ended(), j.Total, j.CreatedAt.Local().Format("2006-01-02 15:04:05"))
		}
		return tw.Flush()
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return &usageError{fmt.Sprintf("%q is not a job id", pos[0])}
	}
	if *follow {
		return followJob(ctx, c, id, *every, stdout)
	}
	var j cliJob
	raw, err := c.do(ctx, "GET", "/api/v1/jobs/"+strconv.FormatInt(id, 10), nil, &j)
	if err != nil {
		return err
	}
	if cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	printJob(stdout, j)
	return nil
}

func printJob(w io.Writer, j cliJob) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%d\n", j.ID)
	fmt.Fprintf(tw, "status\t%s\n", j.Status)
	fmt.Fprintf(tw, "partner\t%s\n", j.Partner)
	fmt.Fprintf(tw, "source\t%s %s\n", j.Source, j.FileName)
	fmt.Fprintf(tw, "progress\t%d%% (%d of %d ended)\n", j.percent(), j.ended(), j.Total)
	var sts []string
	for st := range j.Counts {
		sts = append(sts, st)
	}
	sort.Strings(sts)
	for _, st := range sts {
		fmt.Fprintf(tw, "  %s\t%d\n", st, j.Counts[st])
	}
	fmt.Fprintf(tw, "created\t%s\n", when(j.CreatedAt))
	fmt.Fprintf(tw, "started\t%s\n", when(j.StartedAt))
	fmt.Fprintf(tw, "finished\t%s\n", when(j.FinishedAt))
	tw.Flush()
}

// followJob redraws one line with a progress bar, the rate over the last
// polls and the time left, until the job has finished.
func followJob(ctx context.Context, c *apiClient, id int64, every time.Duration, w io.Writer) error {
	var rate float64 // messages per second, smoothed
	var lastN int
	var lastT time.Time
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var j cliJob
		if _, err := c.do(ctx, "GET", "/api/v1/jobs/"+strconv.FormatInt(id, 10), nil, &j); err != nil {
			return err
		}
		now, n := time.Now(), j.ended()
		if !lastT.IsZero() && now.After(lastT) {
			r := float64(n-lastN) / now.Sub(lastT).Seconds()
			if rate == 0 {
				rate = r
			} else {
				rate = 0.7*rate + 0.3*r
			}
		}
		lastN, lastT = n, now
		eta := "–"
		if rate > 0 && j.Total > n {
			eta = (time.Duration(float64(j.Total-n)/rate) * time.Second).Round(time.Second).String()
		}
		const width = 30
		filled := width * j.percent() / 100
		fmt.Fprintf(w, "\r[%s%s] %3d%%  %d/%d  %.0f msg/s  ETA %s  %s   ", strings.Repeat("#", filled), strings.Repeat("-", width-filled),
			j.percent(), n, j.Total, rate, eta, j.Status)
		if !j.FinishedAt.IsZero() {
			fmt.Fprintln(w)
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return ctx.Err()
		case <-t.C:
		}
	}
}

const filesUsage = `Usage: dropgate files [--rejected] [--partner P] [--json] [--addr A] [--token T] [--config FILE]

Lists the files the running daemon received, newest first, with their problems.

`

func runFiles(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("files", filesUsage, stderr)
	var cf clientFlags
	cf.register(fs)
	rejected := fs.Bool("rejected", false, "only rejected files")
	partner := fs.String("partner", "", "only this partner's files (admin token)")
	limit := fs.Int("limit", 50, "how many files to list")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	c, err := cf.client(getenv)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *rejected {
		q.Set("status", "rejected")
	}
	if *partner != "" {
		q.Set("partner", *partner)
	}
	var resp struct {
		Files []struct {
			ID        int64     `json:"id"`
			Partner   string    `json:"partner"`
			Name      string    `json:"name"`
			Status    string    `json:"status"`
			Error     string    `json:"error"`
			RowsTotal int       `json:"rows_total"`
			RowsBad   int       `json:"rows_bad"`
			CreatedAt time.Time `json:"created_at"`
			Errors    []struct {
				Line   int    `json:"line"`
				Column string `json:"column"`
				Value  string `json:"value"`
				Error  string `json:"error"`
			} `json:"errors"`
		}
	}
	raw, err := c.do(ctx, "GET", "/api/v1/files?"+q.Encode(), nil, &resp)
	if err != nil {
		return err
	}
	if cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPARTNER\tFILE\tROWS\tBAD\tRECEIVED\tPROBLEM")
	for _, f := range resp.Files {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", f.ID, f.Status, f.Partner, f.Name, f.RowsTotal, f.RowsBad,
			f.CreatedAt.Local().Format("2006-01-02 15:04:05"), dash(f.Error))
		for _, e := range f.Errors {
			fmt.Fprintf(tw, "\t\t\t  line %d %s\t\t\t\t%s %s\n", e.Line, e.Column, e.Error, quoteValue(e.Value))
		}
	}
	return tw.Flush()
}

// varFlags collects repeated --var k=v.
type varFlags map[string]string

func (v varFlags) String() string { return "" }
func (v varFlags) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not name=value", s)
	}
	v[k] = val
	return nil
}

const sendUsage = `Usage: dropgate send --partner P --template T --to ADDR [--var name=value]... [--ref R] [--json]

Sends one message through the running daemon's API, checked and rendered as a CSV row would be.

`

func runSend(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", sendUsage, stderr)
	var cf clientFlags
	cf.register(fs)
	partner := fs.String("partner", "", "the partner to send as (an admin token must name one)")
	tmpl := fs.String("template", "", "the partner's template")
	to := fs.String("to", "", "the recipient: an email address or a phone number")
	ref := fs.String("ref", "", "your own reference, echoed in results")
	vars := varFlags{}
	fs.Var(vars, "var", "a template variable as name=value (repeat for more)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *tmpl == "" || *to == "" {
		fs.Usage()
		return &usageError{"--template and --to are required"}
	}
	c, err := cf.client(getenv)
	if err != nil {
		return err
	}
	body := map[string]any{"template": *tmpl, "to": *to}
	if *partner != "" {
		body["partner"] = *partner
	}
	if *ref != "" {
		body["ref"] = *ref
	}
	if len(vars) > 0 {
		body["vars"] = vars
	}
	var resp struct {
		JobID    int64 `json:"job_id"`
		Messages []struct {
			ID     int64  `json:"id"`
			To     string `json:"to"`
			Status string `json:"status"`
		}
	}
	raw, err := c.do(ctx, "POST", "/api/v1/messages", body, &resp)
	if err != nil {
		return withDetails(err, raw)
	}
	if cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	for _, m := range resp.Messages {
		fmt.Fprintf(stdout, "queued message %d to %s in job %d (follow it: dropgate jobs %d --follow)\n", m.ID, m.To, resp.JobID, resp.JobID)
	}
	return nil
}

// withDetails adds a refused send's problems to its error.
func withDetails(err error, raw []byte) error {
	var e struct {
		Error struct {
			Details []struct{ Field, Value, Message string }
		}
	}
	if json.Unmarshal(raw, &e) != nil || len(e.Error.Details) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString(err.Error())
	for _, d := range e.Error.Details {
		fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Message)
	}
	return fmt.Errorf("%s", b.String())
}

// runJobAction is dropgate retry|cancel JOB.
func runJobAction(ctx context.Context, action string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet(action, fmt.Sprintf("Usage: dropgate %s JOB [--json]\n\n%s a job of the running daemon.\n\n", action,
		map[string]string{"retry": "Queues again the failed messages of", "cancel": "Cancels the unsent messages of"}[action]), stderr)
	var cf clientFlags
	cf.register(fs)
	pos, help, err := splitArgs(fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return &usageError{"give one job id"}
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return &usageError{fmt.Sprintf("%q is not a job id", pos[0])}
	}
	c, err := cf.client(getenv)
	if err != nil {
		return err
	}
	var j cliJob
	raw, err := c.do(ctx, "POST", "/api/v1/jobs/"+strconv.FormatInt(id, 10)+"/"+action, nil, &j)
	if err != nil {
		return err
	}
	if cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	fmt.Fprintf(stdout, "job %d: %s (%d%% of %d ended)\n", j.ID, j.Status, j.percent(), j.Total)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func quoteValue(v string) string {
	if v == "" {
		return ""
	}
	return strconv.Quote(v)
}
