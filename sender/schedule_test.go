package sender

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

func fakeChannel() config.Channel {
	return config.Channel{Name: "sms", Type: config.ChannelOutbox, Concurrency: 4}
}

// One worker, so the driver sees the messages in the order they were
// claimed: what the scheduler decides, without the reordering of workers
// that a busy machine preempts at different moments.
func TestPartnersTakeTurnsSoASmallJobIsNotStarvedByAHugeOne(t *testing.T) {
	cc := fakeChannel()
	cc.Concurrency = 1
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	big := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 10000)
	small := queueJob(t, st, "beta", store.SourceFile, store.PriorityBulk, "sms", 10)
	s := newSender(t, cfg, st)
	d := &fakeDriver{}
	useDriver(s, "sms", d)
	start(t, s)
	waitJob(t, st, small.ID, store.JobDone, 30*time.Second)

	bigSent, smallSent := 0, 0
	for _, m := range d.Sent() {
		switch m.JobID {
		case big.ID:
			bigSent++
		case small.ID:
			smallSent++
		}
		if smallSent == 10 {
			break
		}
	}
	if smallSent != 10 || bigSent > s.claimBatch {
		t.Errorf("%d of alpha's 10,000 messages went out before beta's 10; want at most one batch (%d)", bigSent, s.claimBatch)
	}
}

// One worker, so the driver sees the messages in claim order: with four, a
// worker preempted while it holds the API message (reading its job's
// status) let the others send hundreds of bulk messages claimed after it,
// and the test measured the machine's load, not the scheduler.
func TestTransactionalMessageJumpsAheadOfBulk(t *testing.T) {
	cc := fakeChannel()
	cc.Concurrency = 1
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	bulk := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 5000)
	s := newSender(t, cfg, st)
	release := make(chan struct{})
	d := &fakeDriver{hold: gateAt(201, release)}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 30*time.Second, "200 bulk messages to go out", func() bool { return d.Count() >= 200 })

	api := queueJob(t, st, "beta", store.SourceAPI, store.PriorityTransactional, "sms", 1)
	s.Nudge()
	close(release)
	waitJob(t, st, api.ID, store.JobDone, 30*time.Second)
	pos := -1
	for i, m := range d.Sent() {
		if m.JobID == api.ID {
			pos = i
		}
	}
	// Ahead of it can only be what was already claimed: the worker's one,
	// the feed and the dispatcher's batch in hand.
	limit := 200 + 1 + 2*s.claimBatch
	if pos < 0 || pos > limit {
		t.Errorf("the API message went out at position %d, want at most %d", pos, limit)
	}
	if j, _ := st.Job(context.Background(), bulk.ID); j.Status == store.JobDone {
		t.Errorf("bulk job finished before the API message went out")
	}
}

func TestSchedulerRotatesPartnersAndPrefersTransactional(t *testing.T) {
	var s scheduler
	jobs := []store.RunnableJob{{ID: 1, Partner: "b", Priority: 1}, {ID: 2, Partner: "a", Priority: 1}, {ID: 3, Partner: "b", Priority: 1}, {ID: 4, Partner: "c", Priority: 1}}
	var got [][]int64
	for range 5 {
		g, _ := s.next(jobs)
		got = append(got, groupIDs(g))
	}
	// Partners in turn, each with all its jobs, oldest first.
	want := [][]int64{{2}, {1, 3}, {4}, {2}, {1, 3}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("picks = %v, want %v", got, want)
	}
	urgent := append([]store.RunnableJob{{ID: 9, Partner: "z", Source: store.SourceAPI, Urgent: true},
		{ID: 11, Partner: "a", Source: store.SourceWorkflow, Urgent: true}}, jobs...)
	if g, u := s.next(urgent); !slices.Equal(groupIDs(g), []int64{9, 11}) || !u {
		t.Errorf("picked %v (urgent %v), want every transactional job, oldest first, urgent", groupIDs(g), u)
	}
	if g, _ := s.next(nil); g != nil {
		t.Error("picked a job from none")
	}
}

func groupIDs(g []store.RunnableJob) []int64 {
	var ids []int64
	for _, j := range g {
		ids = append(ids, j.ID)
	}
	return ids
}

// The sends are timed by the sender's own (fake) clock, which moves only
// when the test moves it: however the machine schedules the goroutines,
// every send happens at a clock reading, and by any reading T the bucket
// (full at the start) allows at most burst + rate×(T − start) sends. Without
// the limit all 100 would go out at the start.
func TestRateLimitHoldsEveryWindowToTheBucket(t *testing.T) {
	for _, burst := range []int{1, 20} {
		t.Run(fmt.Sprintf("burst%d", burst), func(t *testing.T) {
			t.Parallel()
			cc := fakeChannel()
			cc.Rate, cc.Burst = 20, burst
			cfg := testConfig(t, cc)
			st := openStore(t, cfg)
			// Bulk and API traffic share the channel's bucket.
			a := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 50)
			b := queueJob(t, st, "beta", store.SourceAPI, store.PriorityTransactional, "sms", 50)
			fc := newFakeClock()
			t0 := fc.Now()
			s := newSender(t, cfg, st, withClock(fc))
			d := &fakeDriver{now: fc.Now}
			useDriver(s, "sms", d)
			start(t, s)
			runClock(t, fc, 25*time.Millisecond)
			waitJob(t, st, a.ID, store.JobDone, 30*time.Second)
			waitJob(t, st, b.ID, store.JobDone, 30*time.Second)
			sent := d.Sent()
			if len(sent) != 100 {
				t.Fatalf("sent %d, want 100", len(sent))
			}
			for i, m := range sent {
				allowed := float64(burst) + 20*m.At.Sub(t0).Seconds()
				if float64(i+1) > allowed+1e-6 {
					t.Fatalf("%d sends by %v after the start: the bucket allows %.2f", i+1, m.At.Sub(t0), allowed)
				}
			}
		})
	}
}

// runClock advances fc by step about every millisecond until the test ends:
// time passes for the sender, at a pace that does not matter to the test.
func runClock(t *testing.T, fc *fakeClock, step time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				fc.Advance(step)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
