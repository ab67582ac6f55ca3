package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// needsNodes skips a test of several nodes on one database on the SQLite
// run: SQLite has one node at a time.
func needsNodes(t *testing.T) {
	t.Helper()
	if !onPostgres {
		t.Skip("several nodes share a PostgreSQL database only")
	}
}

// openNodes opens n stores on one database, standing for n nodes, each
// registered as a node.
func openNodes(t *testing.T, n int) []*Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dropgate.db")
	out := make([]*Store, n)
	for i := range out {
		s, err := openTestAt(t, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.RegisterNode(context.Background(), fmt.Sprintf("host%d", i), "", time.Now()); err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// Three nodes claiming one queue at once, four claimers each, never claim
// a message twice, claim every message, and the nodes list counts each
// node's claims.
func TestConcurrentClaimsOnSeveralNodesNeverShareAMessage(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	nodes := openNodes(t, 3)
	const total = 3000
	var jobs []Job
	for i := range 3 {
		jobs = append(jobs, queueTest(t, nodes[i], fmt.Sprintf("p%d", i), PriorityBulk, total/3))
	}
	var mu sync.Mutex
	owner := map[int64]int{} // message -> node
	perNode := make([]int, len(nodes))
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for ni, s := range nodes {
		for range 4 {
			wg.Go(func() {
				for {
					runnable, err := s.RunnableJobs(ctx, "sms", time.Now())
					if err != nil {
						errs <- err
						return
					}
					if len(runnable) == 0 {
						return
					}
					cs, err := s.ClaimFromJobs(ctx, runnable, "sms", time.Now(), time.Minute, 37)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for _, c := range cs {
						if prev, dup := owner[c.ID]; dup {
							errs <- fmt.Errorf("message %d claimed by node %d and again by node %d", c.ID, prev, ni)
						}
						owner[c.ID] = ni
						perNode[ni]++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(owner) != total {
		t.Fatalf("claimed %d messages, want %d", len(owner), total)
	}
	for _, j := range jobs {
		got, err := nodes[0].Job(ctx, j.ID)
		if err != nil || got.Counts[MsgSending] != total/3 || got.Counts[MsgQueued] != 0 || got.Status != JobSending {
			t.Fatalf("job %d after the claims = %+v, %v", j.ID, got, err)
		}
	}
	listed, err := nodes[0].Nodes(ctx, time.Now())
	if err != nil || len(listed) != 3 {
		t.Fatalf("nodes = %+v, %v", listed, err)
	}
	for i, n := range listed {
		if n.ID != nodes[i].NodeID() || n.Claimed != perNode[i] || n.Hostname != fmt.Sprintf("host%d", i) {
			t.Fatalf("node %d listed as %+v; it claimed %d", nodes[i].NodeID(), n, perNode[i])
		}
	}
}

// A node that dies holding leases leaves them to another: once they run
// out, the other's requeue returns them and it claims them; the dead node
// drops out of the list once its heartbeat is stale.
func TestADeadNodesLeasesAreTakenOverByAnother(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	nodes := openNodes(t, 2)
	dead, alive := nodes[0], nodes[1]
	j := queueTest(t, dead, "p", PriorityBulk, 5)
	now := time.Now()
	cs, err := dead.ClaimMessages(ctx, j.ID, "sms", now, time.Minute, 100)
	if err != nil || len(cs) != 5 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	dead.Close() // killed: no release, no stop
	if cs, _ := alive.ClaimMessages(ctx, j.ID, "sms", now, time.Minute, 100); len(cs) != 0 {
		t.Fatalf("another node claimed %d leased messages", len(cs))
	}
	later := now.Add(time.Minute + NodeStale + time.Second)
	if err := alive.Heartbeat(ctx, later); err != nil {
		t.Fatal(err)
	}
	if n, err := alive.RequeueExpiredLeases(ctx, later); err != nil || n != 5 {
		t.Fatalf("requeue = %d, %v", n, err)
	}
	cs, err = alive.ClaimMessages(ctx, j.ID, "sms", later, time.Minute, 100)
	if err != nil || len(cs) != 5 || cs[0].Attempt != 2 {
		t.Fatalf("takeover claim = %+v, %v", cs, err)
	}
	listed, err := alive.Nodes(ctx, later)
	if err != nil || len(listed) != 1 || listed[0].ID != alive.NodeID() || listed[0].Claimed != 5 {
		t.Fatalf("nodes after the death = %+v, %v", listed, err)
	}
}

// A node that stops cleanly returns what it still holds to the queue at
// once, so another node sends it without waiting for the leases, and
// leaves the list.
func TestAStoppedNodeReleasesItsLeases(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ja := queueTest(t, a, "p", PriorityBulk, 4)
	jb := queueTest(t, a, "q", PriorityBulk, 2)
	now := time.Now()
	if cs, err := a.ClaimMessages(ctx, ja.ID, "sms", now, time.Hour, 100); err != nil || len(cs) != 4 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	if cs, err := b.ClaimMessages(ctx, jb.ID, "sms", now, time.Hour, 100); err != nil || len(cs) != 2 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	if n, err := a.StopNode(ctx, now); err != nil || n != 4 {
		t.Fatalf("stop = %d, %v", n, err)
	}
	cs, err := b.ClaimMessages(ctx, ja.ID, "sms", now, time.Hour, 100)
	if err != nil || len(cs) != 4 {
		t.Fatalf("the other node's claim = %d, %v", len(cs), err)
	}
	listed, err := b.Nodes(ctx, now)
	if err != nil || len(listed) != 1 || listed[0].ID != b.NodeID() || listed[0].Claimed != 6 {
		t.Fatalf("nodes after the stop = %+v, %v", listed, err)
	}
}

// A job queued on one node wakes another node's OnJobsQueued functions
// (LISTEN/NOTIFY), and a node is not woken twice by its own commits.
func TestAJobQueuedOnOneNodeWakesAnother(t *testing.T) {
	needsNodes(t)
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	woken := make(chan struct{}, 16)
	defer b.OnJobsQueued(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.ListenQueue(ctx, func() {
			select {
			case listening <- struct{}{}:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not start listening")
	}
	queueTest(t, a, "p", PriorityBulk, 1)
	select {
	case <-woken:
	case <-time.After(30 * time.Second):
		t.Fatal("a job queued on node A did not wake node B")
	}
}

// On SQLite the one node is listed with every message being sent.
func TestNodesListsTheOneSQLiteNode(t *testing.T) {
	skipOnPostgres(t, "SQLite's single node does not record its claims")
	ctx := context.Background()
	s := openTest(t)
	if _, err := s.RegisterNode(ctx, "old", "", time.Now()); err != nil { // left by a crash
		t.Fatal(err)
	}
	id, err := s.RegisterNode(ctx, "box", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	j := queueTest(t, s, "p", PriorityBulk, 3)
	claimAll(t, s, j.ID, time.Now(), time.Minute)
	listed, err := s.Nodes(ctx, time.Now())
	if err != nil || len(listed) != 1 || listed[0].ID != id || listed[0].Hostname != "box" || listed[0].Claimed != 3 {
		t.Fatalf("nodes = %+v, %v", listed, err)
	}
	if _, err := s.StopNode(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if listed, _ := s.Nodes(ctx, time.Now()); len(listed) != 0 {
		t.Fatalf("nodes after the stop = %+v", listed)
	}
}

// Three nodes claiming and recording outcomes at once on the same jobs
// (their tallies and the triggers' take the same rows) all get through:
// every message ends once, and the jobs' counts add up.
func TestNodesClaimAndCompleteTheSameJobsAtOnce(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	nodes := openNodes(t, 3)
	const perJob = 400
	var jobs []Job
	for i := range 4 {
		jobs = append(jobs, queueTest(t, nodes[i%3], fmt.Sprintf("p%d", i), PriorityBulk, perJob))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for _, s := range nodes {
		for w := range 3 {
			wg.Go(func() {
				for {
					runnable, err := s.RunnableJobs(ctx, "sms", time.Now())
					if err != nil {
						errs <- err
						return
					}
					if len(runnable) == 0 {
						return
					}
					cs, err := s.ClaimFromJobs(ctx, runnable, "sms", time.Now(), time.Minute, 23)
					if err != nil {
						errs <- err
						return
					}
					outs := make([]Outcome, len(cs))
					for i, c := range cs {
						kind := OutcomeSent
						if (int(c.ID)+w)%5 == 0 {
							kind = OutcomeFailed // moved by the triggers, in no particular order
						}
						outs[i] = Outcome{ID: c.ID, JobID: c.JobID, Attempt: c.Attempt, Kind: kind, At: time.Now(), Error: "x"}
					}
					if err := s.CompleteMessages(ctx, outs); err != nil {
						errs <- err
						return
					}
					ids := make([]int64, 0, len(runnable))
					for _, j := range runnable {
						ids = append(ids, j.ID)
					}
					if _, err := s.FinishJobsByID(ctx, ids); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, j := range jobs {
		got, err := nodes[0].Job(ctx, j.ID)
		if err != nil || got.Status != JobDone || got.Counts[MsgSent]+got.Counts[MsgFailed] != perJob ||
			got.Counts[MsgSending] != 0 || got.Counts[MsgQueued] != 0 {
			t.Fatalf("job %d after the run = %+v, %v", j.ID, got, err)
		}
	}
}

// A delivery marked on one node (MarkDelivered: the message stays
// "sending") is seen by every node: when that node dies and its lease runs
// out, another node's requeue settles the message as sent, with its
// provider id, instead of putting it back in the queue to be sent again.
func TestADeliveryMarkedOnADeadNodeIsSettledNotSentAgain(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	nodes := openNodes(t, 2)
	dead, alive := nodes[0], nodes[1]
	j := queueTest(t, dead, "p", PriorityBulk, 2)
	now := time.Now()
	cs := claimAll(t, dead, j.ID, now, time.Second)
	if len(cs) != 2 {
		t.Fatalf("claimed %d, want 2", len(cs))
	}
	o := Outcome{ID: cs[0].ID, JobID: j.ID, Attempt: cs[0].Attempt, Kind: OutcomeSent, ProviderID: "prov-1", At: now}
	if err := dead.MarkDelivered(ctx, []Outcome{o}); err != nil {
		t.Fatal(err)
	}
	if m, err := alive.Message(ctx, cs[0].ID); err != nil || m.Status != MsgSending || m.SentAt.IsZero() {
		t.Fatalf("marked message = %q sent_at %v, %v; want sending with sent_at", m.Status, m.SentAt, err)
	}
	n, err := alive.RequeueExpiredLeases(ctx, now.Add(5*time.Second))
	if err != nil || n != 1 {
		t.Fatalf("requeued %d, %v; want only the unmarked message", n, err)
	}
	m, err := alive.Message(ctx, cs[0].ID)
	if err != nil || m.Status != MsgSent || m.ProviderID != "prov-1" {
		t.Fatalf("marked message = %q %q, %v; want sent by prov-1", m.Status, m.ProviderID, err)
	}
	if m, _ := alive.Message(ctx, cs[1].ID); m.Status != MsgQueued {
		t.Fatalf("unmarked message = %q, want queued", m.Status)
	}
	// The dead node's full record, if it came back, changes nothing more.
	if err := dead.CompleteMessages(ctx, []Outcome{o}); err != nil {
		t.Fatal(err)
	}
	if got, _ := alive.Job(ctx, j.ID); got.Counts[MsgSent] != 1 || got.Counts[MsgQueued] != 1 {
		t.Fatalf("job counts = %+v", got.Counts)
	}
}

// A list send started through the API on a node that then dies is left
// "ingesting" with no file claim: the other nodes remove it once that
// node is gone, and leave a live node's alone.
func TestADeadNodesListSendIsRemovedByAnother(t *testing.T) {
	needsNodes(t)
	ctx := context.Background()
	nodes := openNodes(t, 2)
	dying, other := nodes[0], nodes[1]
	now := time.Now()
	w, err := dying.BeginListJob(ctx, "acme", 0, "lists/news", 100)
	if err != nil {
		t.Fatal(err)
	}
	// Live: left alone, by the other node and by its own.
	for _, s := range nodes {
		if n, err := s.AbandonDeadNodesListSends(ctx, now); err != nil || n != 0 {
			t.Fatalf("a live node's send: removed %d (%v), want 0", n, err)
		}
	}
	if _, err := dying.Job(ctx, w.JobID()); err != nil {
		t.Fatalf("live node's job: %v", err)
	}
	// Silent for longer than NodeStale: gone, and so is its send.
	later := now.Add(NodeStale + time.Second)
	if err := other.Heartbeat(ctx, later); err != nil {
		t.Fatal(err)
	}
	if n, err := other.AbandonDeadNodesListSends(ctx, later); err != nil || n != 1 {
		t.Fatalf("a dead node's send: removed %d (%v), want 1", n, err)
	}
	if _, err := other.Job(ctx, w.JobID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dead node's job after the sweep: %v, want not found", err)
	}
}
