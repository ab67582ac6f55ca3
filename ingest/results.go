package ingest

import (
	"context"
	"time"
)

// resultPollInterval is how often the report loop asks for ended jobs. The
// query is one indexed lookup, and partners watch for their result files.
const resultPollInterval = 200 * time.Millisecond

// reportLoop writes reports/<file>.result.csv for every file job that has
// ended (done or cancelled), until ctx ends.
func (in *Ingester) reportLoop(ctx context.Context) {
	t := time.NewTicker(resultPollInterval)
	defer t.Stop()
	for {
		in.writeResultReports(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// writeResultReports writes the reports of the jobs ended since the last
// call and marks them reported.
func (in *Ingester) writeResultReports(ctx context.Context) {
	jobs, err := in.st.FinishedFileJobsToReport(ctx, 50)
	if err != nil {
		if ctx.Err() == nil {
			in.log.Error("cannot list ended jobs", "err", err)
		}
		return
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		p := in.partners[j.Partner]
		if p == nil || j.FileName == "" {
			// A partner removed from the config has no home to report to.
			in.st.MarkJobReported(ctx, j.ID)
			continue
		}
		path := reportPath(p, j.FileName, resultSuffix)
		if err := in.writeResultReport(ctx, path, j.ID); err != nil {
			if ctx.Err() == nil {
				in.log.Error("cannot write result report", "partner", j.Partner, "job", j.ID, "err", err)
			}
			continue
		}
		if err := in.st.MarkJobReported(ctx, j.ID); err != nil {
			in.log.Error("cannot mark job reported", "job", j.ID, "err", err)
			continue
		}
		in.log.Info("result report written", "partner", j.Partner, "job", j.ID, "report", path)
	}
}
