package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func openAPITestStore(t *testing.T) *Store {
	t.Helper()
	return openTestStore(t)
}

func apiSend(partner, key, hash string, recipients ...string) APISend {
	var msgs []Message
	for _, r := range recipients {
		msgs = append(msgs, Message{Channel: "sms", Recipient: r, Body: "hi " + r})
	}
	return APISend{Req: APIRequest{Partner: partner, Key: key, RequestHash: hash}, Msgs: msgs}
}

func tableRows(t *testing.T, st *Store, table string) int {
	t.Helper()
	var n int
	if err := st.writer.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A group whose commit fails stores nothing, and every send of it gets the
// error: none may be answered as stored.
func TestCreateAPIJobsFailedCommitStoresNothing(t *testing.T) {
	st := openAPITestStore(t)
	boom := errors.New("disk on fire")
	st.SetAPICommitHook(func() error { return boom })
	res, err := st.CreateAPIJobs(context.Background(), []APISend{
		apiSend("acme", "k1", "h1", "+351910000001"),
		apiSend("acme", "", "h2", "+351910000002", "+351910000003"),
	})
	if !errors.Is(err, boom) || res != nil {
		t.Fatalf("CreateAPIJobs = %v, %v; want no results and %v", res, err, boom)
	}
	for _, table := range []string{"jobs", "messages", "api_requests", "job_counts"} {
		if n := tableRows(t, st, table); n != 0 {
			t.Errorf("%s has %d rows after a failed commit", table, n)
		}
	}
	st.SetAPICommitHook(nil)
	// The key was not kept: the retry creates the job.
	res, err = st.CreateAPIJobs(context.Background(), []APISend{apiSend("acme", "k1", "h1", "+351910000001")})
	if err != nil || res[0].Err != nil || res[0].Replay {
		t.Fatalf("retry after a failed commit = %+v, %v; want a new job", res, err)
	}
}

// The Idempotency-Key holds inside a group (a repeat of an earlier send of
// the same group replays it; another request with its key is refused) and
// across groups.
func TestCreateAPIJobsIdempotencyWithinAndAcrossGroups(t *testing.T) {
	st := openAPITestStore(t)
	ctx := context.Background()
	res, err := st.CreateAPIJobs(ctx, []APISend{
		apiSend("acme", "k1", "h1", "+351910000001", "+351910000002"),
		apiSend("acme", "k1", "h1", "+351910000001", "+351910000002"), // a retry in the same group
		apiSend("acme", "k1", "other", "+351910000009"),               // the key, another request
		apiSend("beta", "k1", "h1", "+351910000001"),                  // another partner's key space
		apiSend("acme", "", "h1", "+351910000001"),                    // no key: always new
	})
	if err != nil {
		t.Fatal(err)
	}
	first := res[0]
	if first.Err != nil || first.Replay || len(first.IDs) != 2 || first.IDs[1] != first.IDs[0]+1 {
		t.Fatalf("first send = %+v", first)
	}
	if r := res[1]; r.Err != nil || !r.Replay || r.Job.ID != first.Job.ID || !slices.Equal(r.IDs, first.IDs) {
		t.Errorf("repeat in the group = %+v; want a replay of job %d %v", r, first.Job.ID, first.IDs)
	}
	if r := res[2]; !errors.Is(r.Err, ErrKeyReused) {
		t.Errorf("key reused in the group = %+v; want ErrKeyReused", r)
	}
	if r := res[3]; r.Err != nil || r.Replay || r.Job.ID == first.Job.ID {
		t.Errorf("another partner's key = %+v; want its own job", r)
	}
	if r := res[4]; r.Err != nil || r.Replay || r.Job.ID == first.Job.ID || r.Job.ID == res[3].Job.ID {
		t.Errorf("send without key = %+v; want its own job", r)
	}
	if n := tableRows(t, st, "jobs"); n != 3 {
		t.Errorf("%d jobs stored; want 3", n)
	}
	// Across groups.
	res, err = st.CreateAPIJobs(ctx, []APISend{
		apiSend("acme", "k1", "other", "+351910000009"),
		apiSend("acme", "k1", "h1", "+351910000001", "+351910000002"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, ErrKeyReused) {
		t.Errorf("key reused in a later group = %+v; want ErrKeyReused", res[0])
	}
	if r := res[1]; r.Err != nil || !r.Replay || r.Job.ID != first.Job.ID || !slices.Equal(r.IDs, first.IDs) {
		t.Errorf("retry in a later group = %+v; want a replay of job %d", r, first.Job.ID)
	}
	// A new job's tally is right without a recount.
	var queued int
	if err := st.writer.QueryRow(`SELECT n FROM job_counts WHERE job_id = ? AND channel = 'sms' AND status = 'queued'`, first.Job.ID).Scan(&queued); err != nil || queued != 2 {
		t.Errorf("job_counts of job %d = %d, %v; want 2 queued", first.Job.ID, queued, err)
	}
}

// A send that fails part-way through its inserts is rolled back alone:
// the sends before and after it in its group are stored.
func TestCreateAPIJobsFailedSendDoesNotSpoilItsGroup(t *testing.T) {
	st := openAPITestStore(t)
	ctx := context.Background()
	refuseRecipient(t, st, "bad")
	res, err := st.CreateAPIJobs(ctx, []APISend{
		apiSend("acme", "a", "ha", "+351910000001"),
		apiSend("acme", "b", "hb", "+351910000002", "bad"),
		apiSend("acme", "c", "hc", "+351910000003"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil {
		t.Fatalf("results = %+v; want only the second to fail", res)
	}
	if n := tableRows(t, st, "jobs"); n != 2 {
		t.Errorf("%d jobs; want 2 (the failed send's job rolled back)", n)
	}
	if n := tableRows(t, st, "messages"); n != 2 {
		t.Errorf("%d messages; want 2", n)
	}
	if n := tableRows(t, st, "api_requests"); n != 2 {
		t.Errorf("%d keys; want 2 (b's key not kept)", n)
	}
}

// The newest version is read from memory after the first read, and a saved
// version replaces it at once.
func TestLatestTemplateSeesANewVersionAtOnce(t *testing.T) {
	st := openAPITestStore(t)
	ctx := context.Background()
	if _, err := st.LatestTemplate(ctx, "acme", "otp"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestTemplate before any = %v; want ErrNotFound", err)
	}
	for v := 1; v <= 3; v++ {
		if _, err := st.SaveTemplate(ctx, Template{Partner: "acme", Name: "otp", Channel: "sms", Body: "v", Source: "v"}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second read comes from the cache
			got, err := st.LatestTemplate(ctx, "acme", "otp")
			if err != nil || got.Version != v {
				t.Fatalf("LatestTemplate after saving version %d = %d, %v", v, got.Version, err)
			}
		}
	}
}
