package ingest

import (
	"context"
	"path/filepath"
	"time"

	"github.com/dropgate/dropgate/store"
)

// resultPollInterval is how often the report loop asks for ended jobs. The
// query is one indexed lookup, and partners watch for their result files.
const resultPollInterval = 200 * time.Millisecond

// reportLoop writes reports/<file>.result.csv for every file job that has
// ended (done or cancelled), until ctx ends.
func (in *Ingester) reportLoop(ctx context.Context) {
	t := time.NewTicker(resultPollInterval)
	defer t.Stop()
	retryAt := map[int64]time.Time{}
	for {
		in.writeResultReports(ctx, retryAt)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resultRetry is how long a report that could not be written waits before
// the next try, so a broken reports folder does not fill the log.
const resultRetry = time.Minute

// writeResultReports writes the reports of the jobs ended since the last
// call and marks them reported. retryAt holds jobs whose report failed.
func (in *Ingester) writeResultReports(ctx context.Context, retryAt map[int64]time.Time) {
	jobs, err := in.st.FinishedFileJobsToReport(ctx, 50)
	if err != nil {
		if ctx.Err() == nil {
			in.log.Error("cannot list ended jobs", "err", err)
		}
		return
	}
	now := time.Now()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		if now.Before(retryAt[j.ID]) {
			continue
		}
		p := in.partners[j.Partner]
		if p == nil || j.FileName == "" {
			// A partner removed from the config has no home to report to.
			in.st.MarkJobReported(ctx, j.ID)
			continue
		}
		// Nodes sharing the homes write each report once (claims.go).
		if release, ok := in.claimReport(ctx, j); ok {
			in.reportJob(ctx, p, j, now, retryAt)
			release()
		}
	}
}

// reportJob writes one ended job's result report and marks it reported.
func (in *Ingester) reportJob(ctx context.Context, p *partner, j store.Job, now time.Time, retryAt map[int64]time.Time) {
	path := reportPath(p, j.FileName, resultSuffix)
	superseded, err := in.st.LaterFileWithBase(ctx, j.Partner, j.FileID, filepath.Base(j.FileName))
	if err != nil {
		in.log.Error("cannot check for later uploads", "job", j.ID, "err", err)
		return
	}
	if superseded {
		// A later upload of the same name owns reports/<name>.*: this
		// job's result stays in the API only.
		in.log.Info("result report not written: a later upload of the same name replaced it", "partner", j.Partner, "job", j.ID, "file", j.FileName)
		in.st.MarkJobReported(ctx, j.ID)
		return
	}
	if err := in.writeResultReport(ctx, path, j.ID); err != nil {
		if ctx.Err() == nil {
			in.log.Error("cannot write result report; trying again in a minute", "partner", j.Partner, "job", j.ID, "err", err)
			retryAt[j.ID] = now.Add(resultRetry)
		}
		return
	}
	if err := in.st.MarkJobReported(ctx, j.ID); err != nil {
		in.log.Error("cannot mark job reported", "job", j.ID, "err", err)
		return
	}
	delete(retryAt, j.ID)
	in.log.Info("result report written", "partner", j.Partner, "job", j.ID, "report", path)
}
