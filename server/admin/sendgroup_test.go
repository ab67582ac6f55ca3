package admin

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

func groupSend(key, hash, to string) store.APISend {
	return store.APISend{Req: store.APIRequest{Partner: "acme", Key: key, RequestHash: hash},
		Msgs: []store.Message{{Channel: "sms", Recipient: to, Body: "hi"}}}
}

// Sends that arrive while a commit is under way wait for the next one and
// share it; none is answered before its own commit, a failed commit fails
// every send of its group and stores none of them, and a repeated key in a
// group replays the first send.
func TestSendGroupsShareACommitAndAnswerAfterIt(t *testing.T) {
	st := storetest.Open(t)
	g := newSendGroups(st)
	boom := errors.New("commit refused by the test")
	entered, release := make(chan struct{}), make(chan struct{})
	var commits atomic.Int32
	st.SetAPICommitHook(func() error {
		switch commits.Add(1) {
		case 1: // hold the first group's commit while others queue
			close(entered)
			<-release
		case 2:
			return boom
		}
		return nil
	})

	results := make(chan store.APIResult, 10)
	go func() { results <- g.create(context.Background(), groupSend("lead", "h0", "+351910000000")) }()
	select {
	case <-entered:
	case r := <-results:
		t.Fatalf("the first send was answered without reaching its commit: %+v", r)
	}
	second := []store.APISend{
		groupSend("k1", "h1", "+351910000001"),
		groupSend("k2", "h2", "+351910000002"),
		groupSend("", "h3", "+351910000003"),
	}
	for _, sd := range second {
		go func() { results <- g.create(context.Background(), sd) }()
	}
	waitFor(t, func() bool { return g.queue.Waiting() == 3 })
	select {
	case r := <-results:
		t.Fatalf("a send was answered before its commit: %+v", r)
	default:
	}
	close(release)
	var failed int
	for range 4 {
		r := <-results
		switch {
		case errors.Is(r.Err, boom):
			failed++
		case r.Err != nil:
			t.Errorf("unexpected error %v", r.Err)
		}
	}
	if failed != 3 {
		t.Errorf("%d sends failed with the second group's commit; want all 3", failed)
	}
	if n := commits.Load(); n != 2 {
		t.Errorf("%d commits for 2 groups", n)
	}
	jobs, err := st.ListJobs(context.Background(), store.JobFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Errorf("%d jobs stored; want only the first group's", len(jobs))
	}

	// A group holding a send and its retry: the retry replays the send.
	entered2, release2 := make(chan struct{}), make(chan struct{})
	commits.Store(0)
	st.SetAPICommitHook(func() error {
		if commits.Add(1) == 1 {
			close(entered2)
			<-release2
		}
		return nil
	})
	go func() { results <- g.create(context.Background(), groupSend("lead2", "h0", "+351910000000")) }()
	<-entered2
	// Queued in this order: the send, its retry, another request with its key.
	for i, sd := range []store.APISend{groupSend("k1", "h1", "+351910000001"), groupSend("k1", "h1", "+351910000001"), groupSend("k1", "other", "+351910000009")} {
		go func() { results <- g.create(context.Background(), sd) }()
		waitFor(t, func() bool { return g.queue.Waiting() == i+1 })
	}
	close(release2)
	var created, replayed, reused int
	jobOf := map[int64]int{}
	for range 4 {
		r := <-results
		switch {
		case errors.Is(r.Err, store.ErrKeyReused):
			reused++
		case r.Err != nil:
			t.Errorf("unexpected error %v", r.Err)
		case r.Replay:
			replayed++
			jobOf[r.Job.ID]++
		default:
			created++
			jobOf[r.Job.ID]++
		}
	}
	if created != 2 || replayed != 1 || reused != 1 || len(jobOf) != 2 {
		t.Errorf("created %d, replayed %d, refused %d, jobs %v; want 2, 1, 1 and the replay on the created job", created, replayed, reused, jobOf)
	}
	if n := commits.Load(); n != 2 {
		t.Errorf("%d commits; want 2 (the three queued sends share one)", n)
	}
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A panic while storing a group answers its sends with an error and leaves
// the queue working for the next ones.
func TestSendGroupsSurviveAPanic(t *testing.T) {
	st := storetest.Open(t)
	g := newSendGroups(st)
	st.SetAPICommitHook(func() error { panic("test panic") })
	if r := g.create(context.Background(), groupSend("k1", "h1", "+351910000001")); r.Err == nil {
		t.Fatalf("send during a panic = %+v; want an error", r)
	}
	st.SetAPICommitHook(nil)
	if r := g.create(context.Background(), groupSend("k1", "h1", "+351910000001")); r.Err != nil || r.Replay {
		t.Fatalf("send after the panic = %+v; want a new job", r)
	}
}
