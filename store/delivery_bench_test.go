package store

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// processCPU is the process's CPU time so far (user + system): on a shared
// machine it moves much less with the load than the time a run takes.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClaimAndComplete measures the database's share of a delivery:
// claiming messages 256 at a time and recording them sent 512 at a time, as
// the sender does. ns/op is per message; cpu-ns/msg is the process's CPU
// time per message (the figure to compare on a shared machine).
//
//	go test ./store -run '^$' -bench ClaimAndComplete
func BenchmarkClaimAndComplete(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "dropgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	msgs := make([]Message, b.N)
	for i := range msgs {
		msgs[i] = Message{Channel: "sms", Recipient: fmt.Sprintf("+1555%07d", i), Body: fmt.Sprintf("hello %d", i)}
	}
	j, _, err := s.CreateJob(ctx, Job{Partner: "bench", Source: SourceFile, Priority: PriorityBulk}, msgs)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := processCPU(b)
	var claimT, completeT time.Duration
	var pending []Outcome
	flush := func() {
		t := time.Now()
		if err := s.CompleteMessages(ctx, pending); err != nil {
			b.Fatal(err)
		}
		completeT += time.Since(t)
		pending = pending[:0]
	}
	for done := 0; done < b.N; {
		t := time.Now()
		cs, err := s.ClaimMessages(ctx, j.ID, "sms", time.Now(), time.Minute, 256)
		claimT += time.Since(t)
		if err != nil || len(cs) == 0 {
			b.Fatalf("claim: %d, %v", len(cs), err)
		}
		for _, c := range cs {
			pending = append(pending, Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt, Kind: OutcomeSent, ProviderID: "p1", At: time.Now()})
		}
		if len(pending) >= 512 {
			flush()
		}
		done += len(cs)
	}
	flush()
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/msg")
	b.ReportMetric(float64(claimT.Nanoseconds())/float64(b.N), "claim-ns/msg")
	b.ReportMetric(float64(completeT.Nanoseconds())/float64(b.N), "complete-ns/msg")
}
