package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// groupCall is one AcceptEvents call of queueBehindATransaction and what
// became of it.
type groupCall struct {
	events []EventWrite
	res    []EventResult
	err    error
}

// queueBehindATransaction holds a first AcceptEvents call inside its
// transaction until every call of calls waits behind it, then lets it
// commit; the waiting calls then go as the next group. fault, if not nil,
// is the fault of every transaction after the first. It returns the
// events of each transaction after the first, as the fault hook saw them.
func queueBehindATransaction(t *testing.T, s *Store, calls []*groupCall, fault func([]EventWrite) error) [][]EventWrite {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	first := true
	var seen [][]EventWrite
	s.SetAcceptEventsFault(func(evs []EventWrite) error {
		mu.Lock()
		if first {
			first = false
			mu.Unlock()
			close(entered)
			<-release
			return nil
		}
		seen = append(seen, slices.Clone(evs))
		mu.Unlock()
		if fault != nil {
			return fault(evs)
		}
		return nil
	})
	t.Cleanup(func() { s.SetAcceptEventsFault(nil) })
	leadDone := make(chan error, 1)
	go func() {
		_, err := s.AcceptEvents(ctx, []EventWrite{groupEvent("lead", "lead@example.com")}, now)
		leadDone <- err
	}()
	<-entered
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() { c.res, c.err = s.AcceptEvents(ctx, c.events, now) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.EventGroups().Waiting < len(calls) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d calls wait behind the transaction under way, want %d", s.EventGroups().Waiting, len(calls))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-leadDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return seen
}

// groupEvent is a cart_abandoned event with an id, starting a run.
func groupEvent(id, email string) EventWrite {
	due := time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)
	return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "cart_abandoned", Email: email, Source: EventFromAPI},
		Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: due}}}
}

func countEvents(t *testing.T, s *Store, id string) int {
	t.Helper()
	var n int
	if err := s.reader.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM events WHERE partner = 'acme' AND event_id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Calls that arrive while a transaction is under way are stored together,
// in one transaction, in the order they queued, and each gets the results
// of its own events: their stored ids and the runs they started.
func TestConcurrentAcceptEventsShareATransactionEachWithItsOwnResults(t *testing.T) {
	s := openTest(t)
	var calls []*groupCall
	for c := range 3 {
		var evs []EventWrite
		for i := range 2 + c {
			evs = append(evs, groupEvent(fmt.Sprintf("c%d-%d", c, i), fmt.Sprintf("c%d-%d@example.com", c, i)))
		}
		calls = append(calls, &groupCall{events: evs})
	}
	seen := queueBehindATransaction(t, s, calls, nil)
	if len(seen) != 1 || len(seen[0]) != 2+3+4 {
		t.Fatalf("the waiting calls went in %d transactions (events %v), want 1 of 9 events", len(seen), seen)
	}
	ids := map[int64]bool{}
	for c, call := range calls {
		if call.err != nil {
			t.Fatalf("call %d: %v", c, call.err)
		}
		if len(call.res) != len(call.events) {
			t.Fatalf("call %d: %d results for %d events", c, len(call.res), len(call.events))
		}
		for i, r := range call.res {
			if r.ID == 0 || r.Duplicate || len(r.Started) != 1 || ids[r.ID] {
				t.Fatalf("call %d event %d: %+v", c, i, r)
			}
			ids[r.ID] = true
			evs, err := s.EventsOfRun(context.Background(), Run{ID: r.Started[0], EventID: r.ID})
			if err != nil || len(evs) != 1 || evs[0].EventID != call.events[i].Event.EventID {
				t.Fatalf("call %d event %d: run %d was started by %+v (%v), want event %s", c, i, r.Started[0], evs, err, call.events[i].Event.EventID)
			}
		}
	}
}

// The same event id in two calls of one group is stored once: the later
// call's event is a repeat, as it would be a moment later.
func TestAnEventIDRepeatedByTwoConcurrentCallsIsStoredOnce(t *testing.T) {
	s := openTest(t)
	a := &groupCall{events: []EventWrite{groupEvent("a-1", "a@example.com"), groupEvent("dup", "dup@example.com")}}
	b := &groupCall{events: []EventWrite{groupEvent("dup", "dup@example.com"), groupEvent("b-1", "b@example.com")}}
	seen := queueBehindATransaction(t, s, []*groupCall{a, b}, nil)
	if len(seen) != 1 {
		t.Fatalf("the two calls went in %d transactions, want 1", len(seen))
	}
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	// Which call queued first is up to the scheduler: one of the two
	// stores "dup", the other finds it a repeat.
	da, db := a.res[1], b.res[0]
	if da.Duplicate == db.Duplicate || (da.Duplicate && (da.ID != 0 || len(da.Started) != 0)) || (db.Duplicate && (db.ID != 0 || len(db.Started) != 0)) {
		t.Fatalf("dup: %+v in the first call, %+v in the second; want one stored, one repeat", da, db)
	}
	if a.res[0].Duplicate || b.res[1].Duplicate {
		t.Fatalf("the other events: %+v, %+v", a.res[0], b.res[1])
	}
	if n := countEvents(t, s, "dup"); n != 1 {
		t.Fatalf("dup stored %d times", n)
	}
	counts, err := s.RunCounts(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if n := counts["acme"]["cart"][RunWaiting]; n != 4 { // lead, a-1, dup, b-1
		t.Fatalf("%d waiting runs, want 4", n)
	}
}

// A call whose transaction fails fails alone: the group is stored again,
// each call in its own transaction, and the others are stored.
func TestAFailingCallDoesNotFailTheOthersOfItsGroup(t *testing.T) {
	s := openTest(t)
	errPoison := errors.New("poisoned event")
	poison := func(evs []EventWrite) error {
		for _, e := range evs {
			if e.Event.EventID == "poison" {
				return errPoison
			}
		}
		return nil
	}
	a := &groupCall{events: []EventWrite{groupEvent("a-1", "a@example.com")}}
	bad := &groupCall{events: []EventWrite{groupEvent("bad-1", "bad@example.com"), groupEvent("poison", "p@example.com")}}
	c := &groupCall{events: []EventWrite{groupEvent("c-1", "c@example.com"), groupEvent("c-2", "c2@example.com")}}
	seen := queueBehindATransaction(t, s, []*groupCall{a, bad, c}, poison)
	if len(seen) != 4 || len(seen[0]) != 5 {
		t.Fatalf("transactions after the first: %d (first of %d events), want the group of 5 then each call alone", len(seen), len(seen[0]))
	}
	if !errors.Is(bad.err, errPoison) || bad.res != nil {
		t.Fatalf("the failing call: %v, %+v", bad.err, bad.res)
	}
	for _, call := range []*groupCall{a, c} {
		if call.err != nil {
			t.Fatal(call.err)
		}
		for i, r := range call.res {
			if r.ID == 0 || r.Duplicate || len(r.Started) != 1 {
				t.Fatalf("event %s: %+v", call.events[i].Event.EventID, r)
			}
			if n := countEvents(t, s, call.events[i].Event.EventID); n != 1 {
				t.Fatalf("event %s stored %d times", call.events[i].Event.EventID, n)
			}
		}
	}
	for _, id := range []string{"bad-1", "poison"} {
		if n := countEvents(t, s, id); n != 0 {
			t.Fatalf("event %s of the failed call stored %d times", id, n)
		}
	}
}

// A batch (a group's, two partners') that repeats a stored id among
// events of two partners and events without an id: the repeat is left
// out, and every other event gets its own stored row's id, its run
// started by it.
func TestAcceptEventsGivesEachStoredEventItsIDAroundARepeat(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	if _, err := s.AcceptEvents(ctx, []EventWrite{groupEvent("x", "x@example.com")}, now); err != nil {
		t.Fatal(err)
	}
	ev := func(partner, id, email string) EventWrite {
		w := groupEvent(id, email)
		w.Event.Partner = partner
		return w
	}
	batch := []EventWrite{ev("beta", "x", "bx@example.com"), ev("acme", "x", "ax@example.com"), ev("acme", "", "anon@example.com"),
		ev("beta", "y", "by@example.com"), ev("acme", "z", "az@example.com")}
	res, err := s.AcceptEvents(ctx, batch, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if i == 1 {
			if !r.Duplicate || r.ID != 0 || len(r.Started) != 0 {
				t.Fatalf("the repeat of acme's x: %+v", r)
			}
			continue
		}
		if r.Duplicate || r.ID == 0 || len(r.Started) != 1 {
			t.Fatalf("event %d: %+v", i, r)
		}
		evs, err := s.EventsOfRun(ctx, Run{ID: r.Started[0], EventID: r.ID})
		if err != nil || len(evs) != 1 || evs[0].Partner != batch[i].Event.Partner || evs[0].EventID != batch[i].Event.EventID || evs[0].Email != batch[i].Event.Email {
			t.Fatalf("event %d (id %d): stored as %+v (%v)", i, r.ID, evs, err)
		}
		var eventID int64
		if err := s.reader.QueryRowContext(ctx, `SELECT event_id FROM workflow_runs WHERE id = ?`, r.Started[0]).Scan(&eventID); err != nil || eventID != r.ID {
			t.Fatalf("event %d: its run %d names event %d (%v), want %d", i, r.Started[0], eventID, err, r.ID)
		}
	}
}
