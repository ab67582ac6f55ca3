package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

func TestQueueTakesPartnersInTurns(t *testing.T) {
	q := newWorkQueue()
	a1, a2, a3 := workItem{"a", "inbox/1.csv"}, workItem{"a", "inbox/2.csv"}, workItem{"a", "inbox/3.csv"}
	b1, c1 := workItem{"b", "inbox/1.csv"}, workItem{"c", "inbox/1.csv"}
	for _, it := range []workItem{a1, a2, a3, b1, c1} {
		if !q.push(it) {
			t.Fatalf("push %v refused", it)
		}
	}
	if q.push(a2) {
		t.Error("a waiting file was queued twice")
	}
	take := func(want workItem) {
		t.Helper()
		got, ok := q.pop()
		if !ok || got != want {
			t.Fatalf("pop = %v, %v; want %v", got, ok, want)
		}
	}
	take(a1)
	take(b1)
	take(c1)
	if it, ok := q.pop(); ok {
		t.Fatalf("pop = %v while partner a has a file in progress; want nothing", it)
	}
	q.done(b1)
	q.done(a1)
	take(a2)
	q.push(b1) // b uploads again: its turn comes after a's
	q.done(a2)
	take(b1)
	take(a3)
	q.done(a3)
	q.done(b1)
	q.done(c1)
	if it, ok := q.pop(); ok {
		t.Fatalf("pop = %v from an empty queue", it)
	}
}

func TestQueueTakesAPartnersTemplatesBeforeItsLists(t *testing.T) {
	q := newWorkQueue()
	list, tmpl := workItem{"a", "inbox/welcome/1.csv"}, workItem{"a", "templates/welcome.tmpl"}
	q.push(workItem{"a", "inbox/0.csv"})
	first, _ := q.pop()
	q.push(list)
	q.push(tmpl)
	q.done(first)
	if got, _ := q.pop(); got != tmpl {
		t.Fatalf("pop = %v, want the template %v first", got, tmpl)
	}
}

func TestQueueNextWakesEveryIdleWorker(t *testing.T) {
	q := newWorkQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan workItem, 2)
	for range 2 {
		go func() {
			if it, ok := q.next(ctx); ok {
				got <- it
			}
		}()
	}
	q.push(workItem{"a", "inbox/1.csv"})
	q.push(workItem{"b", "inbox/1.csv"})
	for range 2 {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatal("a worker was not woken for a waiting partner")
		}
	}
}

// holdPartner makes e's ingester stop each file of partner in progress
// (its job created, no row read yet) until release is closed; held
// receives each held item.
func holdPartner(e *testEnv, partner string) (held chan workItem, release chan struct{}) {
	held, release = make(chan workItem, 10), make(chan struct{})
	e.in.ingesting = func(ctx context.Context, it workItem) error {
		if it.partner == partner {
			held <- it
			select {
			case <-release:
			case <-ctx.Done(): // the test ended (failed) with the file held
			}
		}
		return nil
	}
	return held, release
}

// waitHeld waits for the next held item.
func waitHeld(t *testing.T, held chan workItem) workItem {
	t.Helper()
	select {
	case it := <-held:
		return it
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a file to be in progress")
	}
	return workItem{}
}

// drop writes a file into the partner's home and reports it complete, as
// an embedded server does.
func (e *testEnv) drop(partner, rel string, data []byte) {
	e.t.Helper()
	e.write(partner, rel, data)
	e.in.FileComplete(partner, rel)
}

// fileStatus returns the status of the partner's file named rel, "" when
// none is recorded.
func (e *testEnv) fileStatus(partner, rel string) (string, int64) {
	e.t.Helper()
	for _, f := range e.files(partner) {
		if f.Name == rel {
			return f.Status, f.JobID
		}
	}
	return "", 0
}

func TestIngestQueuesAnotherPartnersFileWhileOneIsStillIngesting(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.template("legacy", "welcome", welcomeSMS)
	held, release := holdPartner(e, "acme")
	e.run()

	e.drop("acme", "inbox/welcome/big.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))
	waitHeld(t, held)
	jobs, err := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme"})
	if err != nil || len(jobs) != 1 || jobs[0].Status != store.JobIngesting {
		t.Fatalf("acme's jobs = %+v, %v; want one ingesting", jobs, err)
	}
	e.drop("legacy", "inbox/welcome/small.csv", []byte("phone,first_name,order_id\n912345678,Rui,B-1\n"))
	waitFor(t, "legacy's file to be queued while acme's is ingesting", 30*time.Second, func() bool {
		st, _ := e.fileStatus("legacy", "inbox/welcome/small.csv")
		return st == store.FileQueued
	})
	if jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{Partner: "acme", Status: store.JobIngesting}); len(jobs) != 1 {
		t.Fatalf("acme's ingesting jobs = %+v; want its held file still ingesting", jobs)
	}
	close(release)
	waitFor(t, "acme's file to be queued", 30*time.Second, func() bool {
		st, _ := e.fileStatus("acme", "inbox/welcome/big.csv")
		return st == store.FileQueued
	})
}

func TestIngestReadsOnePartnersFilesOneAtATimeInOrder(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	e.template("legacy", "welcome", welcomeSMS)
	held, release := holdPartner(e, "acme")
	e.run()

	e.drop("acme", "inbox/welcome/1.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))
	if it := waitHeld(t, held); it.rel != "inbox/welcome/1.csv" {
		t.Fatalf("held %v first", it)
	}
	e.drop("acme", "inbox/welcome/2.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-2\n"))
	// A free worker takes legacy's file, and still not acme's second one.
	e.drop("legacy", "inbox/welcome/3.csv", []byte("phone,first_name,order_id\n912345678,Rui,B-1\n"))
	waitFor(t, "legacy's file to be queued", 30*time.Second, func() bool {
		st, _ := e.fileStatus("legacy", "inbox/welcome/3.csv")
		return st == store.FileQueued
	})
	if st, _ := e.fileStatus("acme", "inbox/welcome/2.csv"); st != "" {
		t.Fatalf("acme's second file is %q while its first is in progress; want it waiting", st)
	}
	close(release)
	waitFor(t, "acme's files to be queued", 30*time.Second, func() bool {
		st1, _ := e.fileStatus("acme", "inbox/welcome/1.csv")
		st2, _ := e.fileStatus("acme", "inbox/welcome/2.csv")
		return st1 == store.FileQueued && st2 == store.FileQueued
	})
	_, job1 := e.fileStatus("acme", "inbox/welcome/1.csv")
	_, job2 := e.fileStatus("acme", "inbox/welcome/2.csv")
	if job1 >= job2 {
		t.Errorf("jobs %d (1.csv) and %d (2.csv): want acme's files in the order they came", job1, job2)
	}
}
