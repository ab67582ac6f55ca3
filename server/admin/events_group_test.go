package admin

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// Requests of two partners that arrive while a transaction is under way
// are stored together in the next one, and each gets its own answer: its
// events' ids and runs, the same id sent by the other partner not a
// repeat, each run seen by its own partner only.
func TestConcurrentEventRequestsShareATransactionEachWithItsOwnAnswer(t *testing.T) {
	f := newFixture(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.store.SetAcceptEventsFault(func([]store.EventWrite) error {
		once.Do(func() { close(entered); <-release })
		return nil
	})
	t.Cleanup(func() { f.store.SetAcceptEventsFault(nil) })
	before := f.store.EventGroups()
	leadDone := make(chan int, 1)
	go func() {
		code, _ := f.send(t, "POST", "/api/v1/events", partnerToken, `{"event": "cart_abandoned", "email": "lead@example.com"}`)
		leadDone <- code
	}()
	<-entered
	type answer struct {
		code int
		out  map[string]any
	}
	reqs := []struct{ token, body string }{
		{partnerToken, `{"events": [{"id": "a-1", "event": "cart_abandoned", "email": "a@example.com"}, {"id": "dup", "event": "cart_abandoned", "email": "d@example.com"}]}`},
		{betaToken, `{"events": [{"id": "dup", "event": "cart_abandoned", "email": "d@example.com"}]}`},
		{partnerToken, `{"events": [{"id": "c-1", "event": "cart_abandoned", "email": "c@example.com"}, {"id": "c-2", "event": "cart_abandoned", "email": "c2@example.com"}, {"id": "c-3", "event": "order_placed", "email": "c@example.com"}]}`},
	}
	answers := make([]answer, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { answers[i].code, answers[i].out = f.send(t, "POST", "/api/v1/events", r.token, r.body) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.store.EventGroups().Waiting < len(reqs) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d requests wait behind the transaction under way, want %d", f.store.EventGroups().Waiting, len(reqs))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if code := <-leadDone; code != 202 {
		t.Fatalf("the first request: %d", code)
	}
	wg.Wait()
	if after := f.store.EventGroups(); after.Transactions-before.Transactions != 2 || after.Calls-before.Calls != 4 {
		t.Fatalf("4 requests in %d transactions, want 2 (the first, then the 3 that waited)", after.Transactions-before.Transactions)
	}
	wantRuns := []int{2, 1, 2} // the order_placed event starts none (and cancels c@'s run)
	for i, a := range answers {
		if a.code != 202 {
			t.Fatalf("request %d: %d %v", i, a.code, a.out)
		}
		events := a.out["events"].([]any)
		if a.out["accepted"].(float64) != float64(len(events)) || a.out["duplicates"].(float64) != 0 {
			t.Fatalf("request %d: %v", i, a.out)
		}
		for k, e := range events {
			if idx := e.(map[string]any)["index"].(float64); idx != float64(k) {
				t.Fatalf("request %d: event %d answered as index %v", i, k, idx)
			}
		}
		runs := runIDs(t, a.out)
		if len(runs) != wantRuns[i] {
			t.Fatalf("request %d started runs %v, want %d", i, runs, wantRuns[i])
		}
		own, other := reqs[i].token, betaToken
		if own == betaToken {
			other = partnerToken
		}
		for _, id := range runs {
			path := fmt.Sprintf("/api/v1/runs/%d", id)
			if code, out := f.send(t, "GET", path, own, ""); code != 200 {
				t.Fatalf("request %d: its run %d: %d %v", i, id, code, out)
			}
			if code, _ := f.send(t, "GET", path, other, ""); code != 404 {
				t.Fatalf("request %d: its run %d seen by the other partner: %d", i, id, code)
			}
		}
	}
	if c := answers[2].out["events"].([]any)[2].(map[string]any)["runs_cancelled"]; c != float64(1) {
		t.Fatalf("order_placed cancelled %v runs, want 1", c)
	}
}
