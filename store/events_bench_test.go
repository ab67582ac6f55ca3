package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAcceptEvents stores N events (phone, two data fields, one run
// each) through AcceptEvents in batches of 1,000, as the API's benchmark
// (workflow/bench_test.go) does without HTTP, and reports the CPU per
// event: the store's share of an event's cost (DROPGATE_BENCH_ROWS
// changes N, default 30,000).
//
//	go test ./store -run '^$' -bench AcceptEvents -benchtime 1x
func BenchmarkAcceptEvents(b *testing.B) {
	n := benchRowsOr(30_000)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for range b.N {
		s, err := Open(ctx, filepath.Join(b.TempDir(), "dropgate.db"))
		if err != nil {
			b.Fatal(err)
		}
		var cpu time.Duration
		for start := 0; start < n; start += 1000 {
			ws := benchSignups(start, 1000, RunStart{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)})
			c0 := cpuNow()
			if _, err := s.AcceptEvents(ctx, ws, now); err != nil {
				b.Fatal(err)
			}
			cpu += cpuNow() - c0
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
		s.Close()
	}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRowsOr is DROPGATE_BENCH_ROWS, or def.
func benchRowsOr(def int) int {
	if v, err := strconv.Atoi(os.Getenv("DROPGATE_BENCH_ROWS")); err == nil && v > 0 {
		return v
	}
	return def
}

// benchSignups is n signup events from API, ids s-<start>..., each with a
// phone, two data fields and the run start.
func benchSignups(start, n int, run RunStart) []EventWrite {
	ws := make([]EventWrite, 0, n)
	for k := start; k < start+n; k++ {
		ws = append(ws, EventWrite{
			Event: Event{Partner: "acme", EventID: fmt.Sprintf("s-%d", k), Name: "signup", Phone: fmt.Sprintf("+35191%07d", k),
				Source: EventFromAPI, Data: map[string]string{"name": fmt.Sprintf("user %d", k), "code": fmt.Sprintf("%06d", k)}},
			Starts: []RunStart{run}})
	}
	return ws
}
