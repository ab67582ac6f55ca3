package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// Two stores on one database (two nodes on one PostgreSQL; two processes
// on one SQLite file) write file jobs, API groups and small jobs at once:
// no insert takes an id the other reserved, and every job lists exactly
// its own messages, in order, through its id range.
func TestTwoStoresOnOneDatabaseWriteJobsAtOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dropgate.db")
	nodes := []*Store{openAt(t, path), openAt(t, path)}
	const rows, sends = 2000, 15
	type written struct {
		job  int64
		msgs []string // bodies, in order
	}
	var mu sync.Mutex
	var all []written
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(nodes))
	for k, s := range nodes {
		wg.Add(2)
		go func() { // a file job
			defer wg.Done()
			fileID, err := s.CreateFile(ctx, File{Partner: "p" + strconv.Itoa(k), Name: "inbox/a.csv"})
			if err != nil {
				errs <- err
				return
			}
			w, err := s.BeginFileJob(ctx, "p"+strconv.Itoa(k), fileID, "inbox/a.csv", 250)
			if err != nil {
				errs <- err
				return
			}
			defer w.Abort(ctx)
			var bodies []string
			for i := range rows {
				b := fmt.Sprintf("file %d row %d", k, i)
				bodies = append(bodies, b)
				if err := w.Add(Message{Channel: "sms", Line: i + 2, Recipient: "+1", Body: b}); err != nil {
					errs <- err
					return
				}
			}
			if err := w.Commit(ctx, rows, nil); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			all = append(all, written{w.JobID(), bodies})
			mu.Unlock()
		}()
		go func() { // API groups and small jobs meanwhile
			defer wg.Done()
			for i := range sends {
				var group []APISend
				for g := range 3 {
					r := fmt.Sprintf("api %d/%d/%d", k, i, g)
					group = append(group, APISend{Req: APIRequest{Partner: "q"}, Msgs: []Message{{Channel: "sms", Recipient: "+2", Body: r}}})
				}
				res, err := s.CreateAPIJobs(ctx, group)
				if err != nil {
					errs <- err
					return
				}
				j, _, err := s.CreateJob(ctx, Job{Partner: "q", Source: SourceAPI}, []Message{
					{Channel: "sms", Recipient: "+3", Body: fmt.Sprintf("job %d/%d a", k, i)}, {Channel: "sms", Recipient: "+3", Body: fmt.Sprintf("job %d/%d b", k, i)}})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for g, r := range res {
					if r.Err != nil {
						errs <- r.Err
					}
					all = append(all, written{r.Job.ID, []string{group[g].Msgs[0].Body}})
				}
				all = append(all, written{j.ID, []string{fmt.Sprintf("job %d/%d a", k, i), fmt.Sprintf("job %d/%d b", k, i)}})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, w := range all {
		var got []string
		if err := nodes[0].JobMessages(ctx, w.job, "", 0, 0, func(m Message) error {
			got = append(got, m.Body)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(w.msgs) {
			t.Fatalf("job %d lists %d messages, want its own %d", w.job, len(got), len(w.msgs))
		}
		total += len(got)
	}
	var n int
	nodes[1].reader.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n)
	if want := len(nodes) * (rows + sends*5); total != want || n != want {
		t.Errorf("%d messages listed, %d stored; want %d", total, n, want)
	}
}
