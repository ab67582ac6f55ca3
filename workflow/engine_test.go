package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// env is an engine over a real store and ingester, on a fake clock.
type env struct {
	t     *testing.T
	cfg   *config.Config
	st    *store.Store
	in    *ingest.Ingester
	eng   *Engine
	clock *fakeClock
	ctx   context.Context
}

const cartWorkflow = `
[[workflow]]
name = "cart"
partner = "acme"
on = "cart_abandoned"
exit_on = ["order_placed"]
steps = [{ delay = "1h" }, { send = { template = "reminder" } }]
`

// start0 is 10:00 UTC, outside any quiet hours of the tests.
var start0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, workflows string, at time.Time) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	src := `data_dir = "` + t.TempDir() + `"
[admin]
listen = "127.0.0.1:0"
[[partner]]
name = "acme"
region = "PT"
channels = ["email", "sms"]
` + workflows
	cfg, err := config.Parse(strings.NewReader(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := storetest.OpenAt(t, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := ingest.New(ingest.Options{Config: cfg, Store: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	inDone := make(chan error, 1)
	go func() { inDone <- in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-inDone })
	for name, src := range map[string]string{
		"reminder": "channel: email\nsubject: Your cart\n---\nHi, your cart {{.key}} is waiting.\n",
		"text":     "channel: sms\n---\nYour cart {{.key}} is waiting.\n",
	} {
		if _, _, err := in.PutTemplate(ctx, "acme", name, src); err != nil {
			t.Fatal(err)
		}
	}
	clock := newFakeClock(at)
	eng, err := New(Options{Config: cfg, Store: st, Composer: in, Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { eng.Close(); <-done })
	return &env{t: t, cfg: cfg, st: st, in: in, eng: eng, clock: clock, ctx: ctx}
}

func (e *env) event(name, email, key string) store.EventResult {
	e.t.Helper()
	res, err := e.eng.Accept(e.ctx, []store.Event{{Partner: "acme", Name: name, Email: email, Phone: "+351912345678",
		Key: key, Source: store.EventFromAPI}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0]
}

// messages counts the messages of workflow jobs.
func (e *env) messages() int {
	e.t.Helper()
	jobs, err := e.st.ListJobs(e.ctx, store.JobFilter{Partner: "acme", Source: store.SourceWorkflow})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, j := range jobs {
		n += j.Total
	}
	return n
}

// waitRun polls until run id has status (generous deadline: busy machine).
func (e *env) waitRun(id int64, status string) store.Run {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.st.RunOf(e.ctx, "acme", id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.Status == status {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d is %s, want %s", id, r.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCartAbandonedSendsOneMessageAnHourLater(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	res := e.event("cart_abandoned", "ana@example.com", "cart-1")
	if len(res.Started) != 1 {
		t.Fatalf("runs started: %v", res.Started)
	}
	run := res.Started[0]
	e.clock.Advance(59 * time.Minute)
	if r := e.waitRun(run, store.RunWaiting); r.Step != 1 {
		t.Fatalf("run at step %d before its hour", r.Step)
	}
	e.clock.Advance(time.Minute)
	e.waitRun(run, store.RunDone)
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	steps, err := e.st.StepsOfRun(e.ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Outcome != store.StepQueued || steps[0].MessageID == 0 {
		t.Fatalf("steps %+v", steps)
	}
	m, err := e.st.Message(e.ctx, steps[0].MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Recipient != "ana@example.com" || !strings.Contains(m.Body, "cart-1") {
		t.Fatalf("message %+v", m)
	}
	job, err := e.st.Job(e.ctx, m.JobID)
	if err != nil || job.Source != store.SourceWorkflow {
		t.Fatalf("job %+v, %v", job, err)
	}
}

func TestOrderPlacedWithTheSameKeyCancelsTheReminder(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	run := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	other := e.event("cart_abandoned", "bob@example.com", "cart-2").Started[0] // fires: shows the scheduler ran
	if got := e.event("order_placed", "ana@example.com", "cart-1"); got.Cancelled != 1 {
		t.Fatalf("order_placed cancelled %d runs", got.Cancelled)
	}
	e.clock.Advance(2 * time.Hour)
	e.waitRun(other, store.RunDone)
	e.waitRun(run, store.RunCancelled)
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want only bob's", n)
	}
}

func TestOrderPlacedWithAnotherKeyLeavesTheReminder(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	run := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	if got := e.event("order_placed", "ana@example.com", "cart-9"); got.Cancelled != 0 {
		t.Fatalf("order_placed of another cart cancelled %d runs", got.Cancelled)
	}
	e.clock.Advance(time.Hour)
	e.waitRun(run, store.RunDone)
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestReentryIsRespected(t *testing.T) {
	e := newEnv(t, strings.Replace(cartWorkflow, `exit_on`, "reentry = \"1d\"\nexit_on", 1), start0)
	first := e.event("cart_abandoned", "ana@example.com", "cart-1").Started
	if len(first) != 1 {
		t.Fatal("no first run")
	}
	if again := e.event("cart_abandoned", "ana@example.com", "cart-2").Started; len(again) != 0 {
		t.Fatal("a second run started while the first waits")
	}
	e.clock.Advance(time.Hour)
	e.waitRun(first[0], store.RunDone)
	if again := e.event("cart_abandoned", "ana@example.com", "cart-3").Started; len(again) != 0 {
		t.Fatal("a run started within the reentry day")
	}
	e.clock.Advance(24 * time.Hour)
	if again := e.event("cart_abandoned", "ana@example.com", "cart-4").Started; len(again) != 1 {
		t.Fatal("no run a day later")
	}
}

func TestDefaultReentryWaitsForThePendingRunOnly(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	first := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	if again := e.event("cart_abandoned", "ana@example.com", "cart-2").Started; len(again) != 0 {
		t.Fatal("a second run started while the first waits")
	}
	e.clock.Advance(time.Hour)
	e.waitRun(first, store.RunDone)
	if again := e.event("cart_abandoned", "ana@example.com", "cart-3").Started; len(again) != 1 {
		t.Fatal("no new run once the first ended")
	}
}

func TestQuietHoursDeferAnSMSStep(t *testing.T) {
	wf := `
[[workflow]]
name = "cart-sms"
partner = "acme"
on = "cart_abandoned"
quiet_hours = "21:00-08:00"
steps = [{ delay = "1h" }, { send = { template = "text", channel = "sms" } }]
`
	e := newEnv(t, wf, time.Date(2026, 11, 30, 20, 30, 0, 0, time.UTC))
	run := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	e.clock.Advance(time.Hour) // 21:30: quiet
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.waitRun(run, store.RunWaiting)
		if r.DueAt.Equal(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run due %v, want the end of quiet hours", r.DueAt)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := e.messages(); n != 0 {
		t.Fatalf("%d messages in quiet hours", n)
	}
	e.clock.Advance(10*time.Hour + 30*time.Minute) // 08:00
	e.waitRun(run, store.RunDone)
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestSuppressedContactEndsItsRun(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	run := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	if _, err := e.st.AddSuppressions(e.ctx, []store.Suppression{{Partner: "acme", Recipient: "ana@example.com", Source: "api"}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.waitRun(run, store.RunSuppressed)
	if n := e.messages(); n != 0 {
		t.Fatalf("%d messages to a suppressed contact", n)
	}
}

func TestRepeatedEventIDIsANoOp(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	ev := store.Event{Partner: "acme", EventID: "evt-1", Name: "cart_abandoned", Email: "ana@example.com", Source: store.EventFromAPI}
	for i, want := range []bool{false, true} {
		res, err := e.eng.Accept(e.ctx, []store.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Duplicate != want {
			t.Fatalf("attempt %d: duplicate %v", i, res[0].Duplicate)
		}
	}
}

func TestARunMissingAVariableFailsAloneInItsBatch(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	good := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	bad := e.event("cart_abandoned", "bob@example.com", "").Started[0] // the template uses {{.key}}
	e.clock.Advance(time.Hour)
	e.waitRun(good, store.RunDone)
	r := e.waitRun(bad, store.RunFailed)
	if !strings.Contains(r.LastError, "key") {
		t.Fatalf("last error %q", r.LastError)
	}
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestWhenSeesEventDataAndContactAttributes(t *testing.T) {
	wf := strings.Replace(cartWorkflow, "exit_on", `when = "total >= 20 && tier == 'gold'"`+"\nexit_on", 1)
	e := newEnv(t, wf, start0)
	list, err := e.st.EnsureList(e.ctx, "acme", "customers")
	if err != nil {
		t.Fatal(err)
	}
	for email, tier := range map[string]string{"ana@example.com": "gold", "bob@example.com": "silver"} {
		if _, _, err := e.st.PutContact(e.ctx, list, store.ContactInput{Email: email, Attributes: map[string]any{"tier": tier}}); err != nil {
			t.Fatal(err)
		}
	}
	start := func(email, total string) int {
		res, err := e.eng.Accept(e.ctx, []store.Event{{Partner: "acme", Name: "cart_abandoned", Email: email, Key: "c-" + total,
			Data: map[string]string{"total": total}, Source: store.EventFromAPI}})
		if err != nil {
			t.Fatal(err)
		}
		return len(res[0].Started)
	}
	if start("bob@example.com", "50") != 0 {
		t.Error("a silver contact started a gold-only run")
	}
	if start("ana@example.com", "10") != 0 {
		t.Error("a total of 10 started a run for >= 20")
	}
	if start("ana@example.com", "35") != 1 {
		t.Error("a gold contact with a total of 35 started no run")
	}
	if start("cid@example.com", "99") != 0 {
		t.Error("an unknown contact (no tier) started a run")
	}
}

// flakyComposer fails its first TemplateChannel calls as a database would.
type flakyComposer struct {
	Composer
	mu    sync.Mutex
	fails int
}

func (f *flakyComposer) TemplateChannel(ctx context.Context, partner, name string) (string, string, error) {
	f.mu.Lock()
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return "", "", errors.New("database is locked")
	}
	return f.Composer.TemplateChannel(ctx, partner, name)
}

func TestADatabaseErrorRetriesTheStepInsteadOfFailingTheRun(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	e.eng.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := New(Options{Config: e.cfg, Store: e.st, Composer: &flakyComposer{Composer: e.in, fails: 1}, Clock: e.clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(e.ctx) }()
	t.Cleanup(func() { eng.Close(); <-done })
	res, err := eng.Accept(e.ctx, []store.Event{{Partner: "acme", Name: "cart_abandoned", Email: "ana@example.com", Key: "c1", Source: store.EventFromAPI}})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	// The failed attempt retries a second later, on the engine's clock.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, _ := e.st.RunOf(e.ctx, "acme", res[0].Started[0])
		if r.Status == store.RunDone {
			break
		}
		if r.Status != store.RunWaiting || time.Now().After(deadline) {
			t.Fatalf("run is %s (%s)", r.Status, r.LastError)
		}
		e.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// After downtime, overdue steps fire at start in due order: runs stored
// while no scheduler ran, due at 10:30, 10:10 and 10:20, queue their
// messages 10:10, 10:20, 10:30 (batches of one, so that order is the
// order of their transactions).
func TestOverdueStepsFireAtStartInDueOrder(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	e.eng.Close() // the scheduler is down
	var ids []int64
	for _, due := range []time.Duration{30 * time.Minute, 10 * time.Minute, 20 * time.Minute} {
		res, err := e.st.AcceptEvents(e.ctx, []store.EventWrite{{
			Event:  store.Event{Partner: "acme", Name: "cart_abandoned", Email: fmt.Sprintf("u%d@example.com", due/time.Minute), Key: "c", Source: store.EventFromAPI},
			Starts: []store.RunStart{{Workflow: "cart", Step: 1, DueAt: start0.Add(due)}}}}, start0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res[0].Started[0])
	}
	e.clock.Advance(2 * time.Hour)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := New(Options{Config: e.cfg, Store: e.st, Composer: e.in, Clock: e.clock, Logger: quiet, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(e.ctx) }()
	t.Cleanup(func() { eng.Close(); <-done })
	msg := map[int64]int64{}
	for _, id := range ids {
		e.waitRun(id, store.RunDone)
		steps, err := e.st.StepsOfRun(e.ctx, id)
		if err != nil || len(steps) != 1 {
			t.Fatalf("steps of %d: %+v %v", id, steps, err)
		}
		msg[id] = steps[0].MessageID
	}
	// ids[1] was due first, then ids[2], then ids[0].
	if !(msg[ids[1]] < msg[ids[2]] && msg[ids[2]] < msg[ids[0]]) {
		t.Fatalf("messages queued out of due order: %v for runs %v", msg, ids)
	}
}
