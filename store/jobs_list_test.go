package store

import (
	"context"
	"testing"
)

// A page of jobs has each job's own counts, whether its tallies are read by
// range (a dense page, even one filtered) or by the page's ids (a sparse
// one).
func TestListJobsCountsDenseAndSparsePages(t *testing.T) {
	st := openAPITestStore(t)
	ctx := context.Background()
	want := map[int64]int{}
	for i := range 30 {
		partner := "acme"
		if i%2 == 1 || i >= 10 {
			partner = "beta" // acme: jobs 1, 3, 5, 7, 9 (dense), beta the rest
		}
		n := 1 + i%3
		var recipients []string
		for k := range n {
			recipients = append(recipients, string(rune('a'+k)))
		}
		j, _, err := st.CreateJob(ctx, Job{Partner: partner, Source: SourceAPI}, apiSend(partner, "", "", recipients...).Msgs)
		if err != nil {
			t.Fatal(err)
		}
		want[j.ID] = n
	}
	for _, f := range []JobFilter{{}, {Partner: "acme"}, {Partner: "beta"}, {Partner: "acme", Limit: 2}} {
		jobs, err := st.ListJobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Counts[MsgQueued] != want[j.ID] || len(j.Counts) != 1 {
				t.Errorf("filter %+v: job %d counts %v, want %d queued", f, j.ID, j.Counts, want[j.ID])
			}
		}
	}
}
