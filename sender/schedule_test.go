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

func TestPartnersTakeTurnsSoASmallJobIsNotStarvedByAHugeOne(t *testing.T) {
	cfg := testConfig(t, fakeChannel())
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
	if smallSent != 10 || bigSent >= 1000 {
		t.Errorf("%d of alpha's 10,000 messages went out before beta's 10; want fewer than 1,000", bigSent)
	}
}

func TestTransactionalMessageJumpsAheadOfBulk(t *testing.T) {
	cfg := testConfig(t, fakeChannel())
	st := openStore(t, cfg)
	bulk := queueJob(t, st, "alpha", store.SourceFile, store.PriorityBulk, "sms", 5000)
	s := newSender(t, cfg, st)
	release := make(chan struct{})
	d := &fakeDriver{hold: gateAt(201, release)}
	useDriver(s, "sms", d)
	start(t, s)
	waitFor(t, 10*time.Second, "200 bulk messages to go out", func() bool { return d.Count() >= 200 })

	api := queueJob(t, st, "beta", store.SourceAPI, store.PriorityTransactional, "sms", 1)
	s.Nudge()
	close(release)
	waitJob(t, st, api.ID, store.JobDone, 10*time.Second)
	pos := -1
	for i, m := range d.Sent() {
		if m.JobID == api.ID {
			pos = i
		}
	}
	// Ahead of it can only be what was already claimed: the workers' four,
	// the feed and the dispatcher's batch in hand.
	limit := 200 + 4 + 2*s.claimBatch
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
	urgent := append([]store.RunnableJob{{ID: 9, Partner: "z", Priority: 0}, {ID: 11, Partner: "a", Priority: 0}}, jobs...)
	if g, _ := s.next(urgent); !slices.Equal(groupIDs(g), []int64{9, 11}) {
		t.Errorf("picked %v, want every transactional job, oldest first", groupIDs(g))
	}
	if _, ok := s.next(nil); ok {
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
			s := newSender(t, cfg, st)
			d := &fakeDriver{}
			useDriver(s, "sms", d)
			start(t, s)
			waitJob(t, st, a.ID, store.JobDone, 30*time.Second)
			waitJob(t, st, b.ID, store.JobDone, 30*time.Second)
			sent := d.Sent()
			if len(sent) != 100 {
				t.Fatalf("sent %d, want 100", len(sent))
			}
			// In any window from send i to send j the bucket allows at most
			// burst + rate×(t_j − t_i) sends. The times are taken in the
			// driver, after the token, and a busy machine may delay one of
			// them: allow 100ms (two tokens) of such skew. Without the limit
			// all 100 would go out within milliseconds.
			const skew = 100 * time.Millisecond
			worst := 0.0
			for i := range sent {
				for j := i; j < len(sent); j++ {
					allowed := float64(burst) + 20*(sent[j].At.Sub(sent[i].At)+skew).Seconds()
					if over := float64(j-i+1) - allowed; over > worst {
						worst = over
						t.Errorf("%d sends between #%d and #%d (%v apart): the bucket allows %.1f", j-i+1, i, j, sent[j].At.Sub(sent[i].At), allowed)
					}
				}
			}
		})
	}
}
