package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// A queued send step is no longer a workflow_steps row (migration 0053):
// it is recorded with the runs fired beside it as a range of runs and
// messages, and StepsOfRun lists it as before, among the run's other
// steps, with its own message: runs of two partners interleaved (two jobs,
// so no one range), a run left out of a batch, a deferral before the send,
// a delay after it, a second send and a cancellation after that.
func TestQueuedStepsRecordedAsRangesListAsBefore(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var ws []EventWrite
	for i := range 46 {
		partner := "acme"
		if i >= 30 && i%2 == 0 {
			partner = "beta"
		}
		ws = append(ws, EventWrite{Event: Event{Partner: partner, Name: "signup", Email: fmt.Sprintf("u%d@example.com", i), Source: EventFromAPI},
			Starts: []RunStart{{Workflow: "w", Step: 0, DueAt: t0}}})
	}
	if _, err := s.AcceptEvents(ctx, ws, t0); err != nil {
		t.Fatal(err)
	}
	runs, err := s.DueRuns(ctx, t0, 100)
	if err != nil || len(runs) != 46 {
		t.Fatalf("%d due runs, %v", len(runs), err)
	}
	want := map[int64][]RunStep{}
	fire := func(now time.Time, advs []RunAdvance) {
		t.Helper()
		if _, err := s.AdvanceRuns(ctx, advs, now); err != nil {
			t.Fatal(err)
		}
		for _, a := range advs {
			for _, st := range a.Steps {
				st.At = now
				want[a.ID] = append(want[a.ID], st)
			}
		}
	}
	msg := func(r Run, step int) *Message {
		return &Message{Channel: "email", Recipient: r.Email, Subject: "hi", Body: fmt.Sprintf("step %d", step)}
	}
	// The first ten are deferred at their send step.
	var advs []RunAdvance
	for _, r := range runs[:10] {
		advs = append(advs, RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: 0, To: 0, Status: RunWaiting,
			DueAt: t0.Add(time.Hour), Steps: []RunStep{{Step: 0, Outcome: StepDeferred, Detail: "quiet hours"}}})
	}
	fire(t0, advs)
	// An hour later every run but the 26th sends, then waits a day.
	t1 := t0.Add(time.Hour)
	advs = nil
	for k, r := range runs {
		if k != 25 {
			advs = append(advs, RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: 0, To: 2, Status: RunWaiting,
				DueAt: t1.Add(24 * time.Hour), Msg: msg(r, 0),
				Steps: []RunStep{{Step: 0, Outcome: StepQueued}, {Step: 1, Outcome: StepWaiting, Detail: "until tomorrow"}}})
		}
	}
	fire(t1, advs)
	// The first five send again and are done.
	t2 := t1.Add(24 * time.Hour)
	advs = nil
	for _, r := range runs[:5] {
		advs = append(advs, RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: 2, To: 3, Status: RunDone,
			Msg: msg(r, 2), Steps: []RunStep{{Step: 2, Outcome: StepQueued}}})
	}
	fire(t2, advs)
	if _, _, err := s.CancelRun(ctx, "acme", "w", runs[5].ID, t2); err != nil {
		t.Fatal(err)
	}
	want[runs[5].ID] = append(want[runs[5].ID], RunStep{Step: 2, At: t2, Outcome: StepCancelled, Detail: "cancelled through the API"})

	for _, r := range runs {
		got, err := s.StepsOfRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want[r.ID]) {
			t.Fatalf("steps of run %d = %+v, want %+v", r.ID, got, want[r.ID])
		}
		for i, st := range got {
			w := want[r.ID][i]
			if st.Step != w.Step || st.Outcome != w.Outcome || st.Detail != w.Detail || !st.At.Equal(w.At) {
				t.Errorf("step %d of run %d = %+v, want %+v", i, r.ID, st, w)
			}
			if (st.MessageID != 0) != (w.Outcome == StepQueued) {
				t.Errorf("step %d of run %d has message %d", i, r.ID, st.MessageID)
			}
			if st.MessageID == 0 {
				continue
			}
			m, err := s.Message(ctx, st.MessageID)
			if err != nil || m.Recipient != r.Email || m.Body != fmt.Sprintf("step %d", st.Step) {
				t.Errorf("message %d of run %d step %d = %+v, %v", st.MessageID, r.ID, st.Step, m, err)
			}
			if j, err := s.Job(ctx, m.JobID); err != nil || j.Partner != r.Partner {
				t.Errorf("message %d of run %d (%s) is in job %+v, %v", st.MessageID, r.ID, r.Partner, j, err)
			}
		}
	}
	var rows, ranges int
	if err := s.reader.QueryRow(`SELECT count(*) FROM workflow_steps WHERE outcome = 'queued'`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d queued steps rows (%v), want them all in ranges", rows, err)
	}
	// acme's first 30 runs are two ranges (the 26th was left out), its
	// other eight one each, beta's eight one each, and the second send one.
	if err := s.reader.QueryRow(`SELECT count(*) FROM workflow_sent_ranges`).Scan(&ranges); err != nil || ranges != 19 {
		t.Errorf("%d sent ranges (%v), want 19", ranges, err)
	}
}

// A range spans at most sentSpan run ids, ends where the run ids, the
// message ids or the step stop following on, and its runs' message ids
// follow from its first.
func TestSentRowsSplitRanges(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	p := &AdvancePlan{now: now}
	var msgIDs []int64
	add := func(run, msg, step int64) {
		p.sent = append(p.sent, sentStep{adv: len(p.advs), step: step})
		p.advs = append(p.advs, RunAdvance{ID: run})
		msgIDs = append(msgIDs, msg)
	}
	for k := range int64(sentSpan + 10) {
		add(100+k, 1000+k, 0)
	}
	add(100+sentSpan+10, 9000, 0) // the message ids jump
	add(100+sentSpan+11, 9001, 1) // another step
	add(100+sentSpan+13, 9002, 1) // a run left out
	var got [][5]int64
	for _, args := range p.sentRows(msgIDs) {
		for i := 0; i < len(args); i += 5 {
			got = append(got, [5]int64{args[i].(int64), args[i+1].(int64), args[i+2].(int64), args[i+3].(int64), args[i+4].(int64)})
		}
	}
	at := ms(now)
	want := [][5]int64{
		{100, 100 + sentSpan - 1, 0, at, 1000},
		{100 + sentSpan, 100 + sentSpan + 9, 0, at, 1000 + sentSpan},
		{100 + sentSpan + 10, 100 + sentSpan + 10, 0, at, 9000},
		{100 + sentSpan + 11, 100 + sentSpan + 11, 1, at, 9001},
		{100 + sentSpan + 13, 100 + sentSpan + 13, 1, at, 9002},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ranges = %v, want %v", got, want)
	}
}
