package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAdvanceRuns starts N runs (through AcceptEvents, as
// BenchmarkAcceptEvents), all due at once, and fires them as the
// scheduler does, in batches of 1,000 read with DueRuns/DueRunsAfter,
// each run ending done with a queued SMS and its step. It reports the
// CPU per run of the writer's transaction alone (StoreAdvance, the
// scheduler's critical path) and of reading the batches
// (DROPGATE_BENCH_ROWS changes N, default 30,000).
//
//	go test ./store -run '^$' -bench AdvanceRuns -benchtime 1x
func BenchmarkAdvanceRuns(b *testing.B) {
	n := benchRowsOr(30_000)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for range b.N {
		s, err := Open(ctx, filepath.Join(b.TempDir(), "dropgate.db"))
		if err != nil {
			b.Fatal(err)
		}
		for start := 0; start < n; start += 1000 {
			ws := benchSignups(start, 1000, RunStart{Workflow: "welcome", Step: 0, DueAt: now})
			if _, err := s.AcceptEvents(ctx, ws, now); err != nil {
				b.Fatal(err)
			}
		}
		var read, write time.Duration
		var last *Run
		fired := 0
		for {
			c0 := cpuNow()
			var runs []Run
			if last == nil {
				runs, err = s.DueRuns(ctx, now, 1000)
			} else {
				runs, err = s.DueRunsAfter(ctx, now, *last, 1000)
			}
			read += cpuNow() - c0
			if err != nil {
				b.Fatal(err)
			}
			if len(runs) == 0 {
				break
			}
			advs := make([]RunAdvance, len(runs))
			for i, r := range runs {
				advs[i] = RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: 0, To: 1, Status: RunDone, Due: r.DueAt,
					Msg:   &Message{Channel: "sms", Recipient: r.Phone, Ref: r.Ref, Body: "Hello " + r.Data["name"] + ", your code is " + r.Data["code"]},
					Steps: []RunStep{{Step: 0, Outcome: StepQueued}}}
			}
			p := s.PlanAdvance(advs, now)
			c0 = cpuNow()
			if _, err := s.StoreAdvance(ctx, p); err != nil {
				b.Fatal(err)
			}
			write += cpuNow() - c0
			fired += len(runs)
			last = &runs[len(runs)-1]
		}
		if fired != n {
			b.Fatalf("fired %d runs of %d", fired, n)
		}
		b.ReportMetric(float64(write.Microseconds())/float64(n), "write-cpu-µs/run")
		b.ReportMetric(float64(read.Microseconds())/float64(n), "read-cpu-µs/run")
		s.Close()
	}
}
