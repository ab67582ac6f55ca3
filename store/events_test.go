package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// One batch acts in order, as events sent one by one would: a start, an
// exit of the same key cancelling it, a start again; a second start while
// one waits; a repeated id within the batch and against the stored ones.
func TestAcceptEventsActsInOrderWithinABatch(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	start := func(id, key string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "cart_abandoned", Email: "ana@example.com", Key: key, Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}}
	}
	exit := func(id, key string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "order_placed", Email: "ana@example.com", Key: key, Source: EventFromAPI},
			Exits: []string{"cart"}}
	}
	res, err := s.AcceptEvents(ctx, []EventWrite{start("e1", "c1"), exit("e2", "c1"), start("e3", "c2"), start("e4", "c3"), start("e1", "c9")}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Started) != 1 || res[1].Cancelled != 1 || len(res[2].Started) != 1 || len(res[3].Started) != 0 || !res[4].Duplicate {
		t.Fatalf("results %+v", res)
	}
	first, err := s.RunOf(ctx, "acme", res[0].Started[0])
	if err != nil || first.Status != RunCancelled || first.ExitEvent != res[1].ID {
		t.Fatalf("first run %+v, %v", first, err)
	}
	second, err := s.RunOf(ctx, "acme", res[2].Started[0])
	if err != nil || second.Status != RunWaiting || second.Key != "c2" || !second.DueAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("second run %+v, %v", second, err)
	}
	// The next batch sees the stored runs: an exit of c2 cancels the
	// waiting run, a repeat of e3 does nothing.
	res, err = s.AcceptEvents(ctx, []EventWrite{start("e3", "c2"), exit("e5", "c2"), start("e6", "c4")}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[1].Cancelled != 1 || len(res[2].Started) != 1 {
		t.Fatalf("results %+v", res)
	}
	// Reentry: a contact whose last run started within the window starts
	// none; "never" starts none once one ran.
	later := start("e7", "c5")
	later.Starts[0].Reentry = 2 * time.Hour
	never := start("e8", "c6")
	never.Starts[0].Reentry = -1
	s.CancelRunsByKey(ctx, "acme", "cart", "c4", now)
	res, err = s.AcceptEvents(ctx, []EventWrite{later, never}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Started) != 0 || len(res[1].Started) != 0 {
		t.Fatalf("reentry ignored: %+v", res)
	}
	res, err = s.AcceptEvents(ctx, []EventWrite{start("e9", "c7")}, now.Add(3*time.Hour))
	if err != nil || len(res[0].Started) != 1 {
		t.Fatalf("after the reentry window: %+v, %v", res, err)
	}
}

// A batch larger than one insert statement: every event is stored with its
// own id, every run points at the event that started it, and a second
// batch repeating half of the ids stores only the new half.
func TestAcceptEventsLargeBatchKeepsIDsStraight(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	batch := func(from, n int) []EventWrite {
		var ws []EventWrite
		for i := from; i < from+n; i++ {
			ws = append(ws, EventWrite{Event: Event{Partner: "acme", EventID: fmt.Sprintf("e%d", i), Name: "signup",
				Phone: fmt.Sprintf("+3519100%05d", i), Data: map[string]string{"n": fmt.Sprint(i)}, Source: EventFromAPI},
				Starts: []RunStart{{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)}}})
		}
		return ws
	}
	res, err := s.AcceptEvents(ctx, batch(0, 700), now)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := s.AcceptEvents(ctx, batch(350, 700), now)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range append(res, res2...) {
		if i >= 700 && i < 1050 {
			if !r.Duplicate || r.ID != 0 || len(r.Started) != 0 {
				t.Fatalf("result %d of a repeated id: %+v", i, r)
			}
			continue
		}
		if r.Duplicate || len(r.Started) != 1 {
			t.Fatalf("result %d: %+v", i, r)
		}
		if i%97 != 0 {
			continue
		}
		run, err := s.RunOf(ctx, "acme", r.Started[0])
		if err != nil || run.EventID != r.ID {
			t.Fatalf("run of result %d: %+v %v", i, run, err)
		}
		evs, err := s.EventsOfRun(ctx, run)
		n := i
		if i >= 700 {
			n = i - 350
		}
		if err != nil || len(evs) != 1 || evs[0].EventID != fmt.Sprintf("e%d", n) || evs[0].Data["n"] != fmt.Sprint(n) || run.Data["n"] != fmt.Sprint(n) {
			t.Fatalf("events of run %d (result %d): %+v %v", run.ID, i, evs, err)
		}
	}
}

// The run counts the workflow routes and /metrics read are kept by
// triggers; they must equal a count of the runs after starts, exits,
// repeats and hand cancels.
func TestRunCountsFollowEveryRunMove(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	start := func(id, email, key string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "cart_abandoned", Email: email, Key: key, Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}}
	}
	exit := func(id, email, key string) EventWrite {
		return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "order_placed", Email: email, Key: key, Source: EventFromAPI},
			Exits: []string{"cart"}}
	}
	res, err := s.AcceptEvents(ctx, []EventWrite{start("e1", "a@example.com", "c1"), start("e2", "b@example.com", "c2"),
		start("e3", "c@example.com", "c3"), exit("e4", "a@example.com", "c1"), start("e1", "a@example.com", "c1"),
		{Event: Event{Partner: "acme", EventID: "e5", Name: "signup", Email: "d@example.com", Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "once", Step: 1, DueAt: now, Status: RunDone}, {Workflow: "cart", Step: 1, DueAt: now.Add(time.Hour)}}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CancelRun(ctx, "acme", "cart", res[1].Started[0], now); err != nil {
		t.Fatal(err)
	}
	counts, err := s.RunCounts(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	recount := map[string]int{}
	rows, err := s.reader.QueryContext(ctx, `SELECT status, COUNT(*) FROM workflow_runs WHERE partner = 'acme' AND workflow = 'cart' GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		var n int
		rows.Scan(&st, &n)
		recount[st] = n
	}
	rows.Close()
	if got := counts["acme"]["cart"]; len(got) != len(recount) || got[RunWaiting] != 2 || got[RunCancelled] != 2 {
		t.Fatalf("counts %v, recount %v; want 2 waiting and 2 cancelled", got, recount)
	}
	if got := counts["acme"]["once"]; len(got) != 1 || got[RunDone] != 1 {
		t.Fatalf("counts of once %v, want 1 done", got)
	}
	for st, n := range recount {
		if counts["acme"]["cart"][st] != n {
			t.Fatalf("counts %v, recount %v", counts["acme"]["cart"], recount)
		}
	}
	if other, _ := s.RunCounts(ctx, "beta"); len(other) != 0 {
		t.Fatalf("beta sees %v", other)
	}
}

// Every column of every event and run reads back as written, whichever of
// them a statement's rows share or leave at their default (events_raw.go
// binds shared values once and leaves shared defaults out): rows vary in
// a few columns each, some chunks agree on them, one row stands alone.
func TestAcceptEventsStoresEveryColumnWhateverTheRowsShare(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i := range 203 {
		e := Event{Partner: "acme", Name: "signup", Source: EventFromAPI}
		if i < 64 || i%3 == 0 {
			e.EventID = fmt.Sprintf("e%d", i)
		}
		switch {
		case i >= 64 && i < 128: // a chunk of emails with keys and refs
			e.Email, e.Key, e.Ref = fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("k%d", i%2), "r"
		case i%5 == 0:
			e.Email, e.Phone = fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("+35191%07d", i)
		default:
			e.Phone = fmt.Sprintf("+35191%07d", i)
		}
		if i%4 == 0 && i >= 128 {
			e.Data = map[string]string{"n": fmt.Sprint(i)}
		}
		if i >= 128 && i%2 == 1 {
			e.Name, e.Source, e.OccurredAt = "visit", EventFromFile, now.Add(-time.Duration(i)*time.Minute)
		}
		rs := RunStart{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)}
		if i >= 128 && i%7 == 0 {
			rs = RunStart{Workflow: "once", Step: 0, DueAt: now.Add(time.Duration(i) * time.Second), Status: RunDone}
		}
		ws = append(ws, EventWrite{Event: e, Starts: []RunStart{rs}})
	}
	res, err := s.AcceptEvents(ctx, ws, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		w := ws[i]
		if r.Duplicate || len(r.Started) != 1 {
			t.Fatalf("result %d: %+v", i, r)
		}
		run, err := s.RunOf(ctx, "acme", r.Started[0])
		if err != nil {
			t.Fatal(err)
		}
		e, rs := w.Event, w.Starts[0]
		status := rs.Status
		if status == "" {
			status = RunWaiting
		}
		if run.EventID != r.ID || run.Workflow != rs.Workflow || run.Contact != e.Contact() || run.Email != e.Email || run.Phone != e.Phone ||
			run.Ref != e.Ref || run.Key != e.Key || len(run.Data) != len(e.Data) || run.Data["n"] != e.Data["n"] || run.Status != status ||
			run.Step != rs.Step || dueAt(t, s, run.ID) != ms(rs.DueAt) || !run.CreatedAt.Equal(now) || !run.UpdatedAt.Equal(now) {
			t.Fatalf("run of event %d: %+v, written %+v %+v", i, run, e, rs)
		}
		evs, err := s.EventsOfRun(ctx, run)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events of run %d: %+v %v", run.ID, evs, err)
		}
		got := evs[0]
		occurred := e.OccurredAt
		if occurred.IsZero() {
			occurred = now
		}
		if got.ID != r.ID || got.Partner != "acme" || got.EventID != e.EventID || got.Name != e.Name || got.Email != e.Email || got.Phone != e.Phone ||
			got.Ref != e.Ref || got.Key != e.Key || len(got.Data) != len(e.Data) || got.Data["n"] != e.Data["n"] || got.Source != e.Source ||
			!got.OccurredAt.Equal(occurred) || !got.ReceivedAt.Equal(now) {
			t.Fatalf("event %d: %+v, written %+v", i, got, e)
		}
	}
}

// dueAt reads a run's due_at as stored (Run has it for waiting runs only).
func dueAt(t *testing.T, s *Store, id int64) int64 {
	t.Helper()
	var due int64
	if err := s.reader.QueryRowContext(context.Background(), `SELECT due_at FROM workflow_runs WHERE id = ?`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	return due
}
