// Package workflow runs automated workflows: events of a partner's contacts
// start durable runs whose steps wait (delays, time of day, quiet hours)
// and queue messages, unless an exit event cancels them first.
//
// Everything a run is lives in the store (store/workflow.go): the engine
// keeps no run in memory. The scheduler sleeps until the earliest due time
// of a waiting run, reads due runs in batches in due order, and writes
// each batch's moves and messages in one transaction, so a crash neither
// loses a run nor fires a step twice.
package workflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropgate/dropgate/clock"
	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/internal/freelist"
	"github.com/dropgate/dropgate/segment"
	"github.com/dropgate/dropgate/store"
)

// DefaultBatch is how many due runs the scheduler executes per transaction.
const DefaultBatch = 1000

// Composer checks and renders a send from a stored template exactly as an
// API send is (ingest.Ingester.Compose), and says which channel a template
// is for (ingest.Ingester.TemplateChannel).
type Composer interface {
	Compose(ctx context.Context, partner string, req ingest.APISend) ([]store.Message, []ingest.Problem, error)
	TemplateChannel(ctx context.Context, partner, name string) (channel, recipientField string, err error)
}

// Options are the engine's dependencies.
type Options struct {
	Config   *config.Config
	Store    *store.Store
	Composer Composer
	// Clock is the engine's time; nil means the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
	// Batch is how many due runs one transaction executes (0: DefaultBatch).
	Batch int
	// Node names this node's claims on due runs when several nodes share
	// a PostgreSQL database; unique among the live nodes ("": a name made
	// at random).
	Node string
}

// runClaimLease is how long a node holds the due runs it claimed on
// PostgreSQL: its batch is read, rendered and stored well within it, and
// the runs of a node that stopped wait this long for another node.
const runClaimLease = time.Minute

// Engine accepts events and runs the scheduler.
type Engine struct {
	st     *store.Store
	comp   Composer
	clock  clock.Clock
	log    *slog.Logger
	batch  int
	node   string                      // claims on due runs (PostgreSQL)
	flows  map[string]map[string]*flow // partner → workflow name → flow
	starts map[string][]*flow          // partner+"\x00"+event → flows it starts
	exits  map[string][]string         // partner+"\x00"+event → workflows it cancels
	when   map[*flow]*segment.Expr
	wake   chan struct{}

	mu      sync.Mutex
	closed  bool
	running bool
	quit    chan struct{} // closed by Close
	done    chan struct{} // closed when Run returns
}

// New builds an engine for the config's workflows.
func New(opts Options) (*Engine, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Node == "" {
		var b [8]byte
		rand.Read(b[:])
		opts.Node = "workflow-" + hex.EncodeToString(b[:])
	}
	e := &Engine{st: opts.Store, comp: opts.Composer, clock: opts.Clock, log: opts.Logger.With("component", "workflow"),
		batch: opts.Batch, node: opts.Node, flows: map[string]map[string]*flow{}, starts: map[string][]*flow{}, exits: map[string][]string{},
		when: map[*flow]*segment.Expr{}, wake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	partners := map[string]config.Partner{}
	for _, p := range opts.Config.Partners {
		partners[p.Name] = p
	}
	for _, w := range opts.Config.Workflows {
		f, err := newFlow(w, partners[w.Partner])
		if err != nil {
			return nil, err
		}
		if w.When != "" {
			x, err := segment.Compile(w.When, segment.Options{Now: opts.Clock.Now})
			if err != nil {
				return nil, fmt.Errorf("workflow %s: when: %w", w.Name, err)
			}
			e.when[f] = x
		}
		if e.flows[w.Partner] == nil {
			e.flows[w.Partner] = map[string]*flow{}
		}
		e.flows[w.Partner][w.Name] = f
		e.starts[w.Partner+"\x00"+w.On] = append(e.starts[w.Partner+"\x00"+w.On], f)
		for _, ev := range w.ExitOn {
			e.exits[w.Partner+"\x00"+ev] = append(e.exits[w.Partner+"\x00"+ev], w.Name)
		}
	}
	return e, nil
}

// Has reports whether partner has a workflow named name.
func (e *Engine) Has(partner, name string) bool { return e.flows[partner][name] != nil }

// Workflows lists a partner's workflows ("" for every partner's).
func (e *Engine) Workflows(partner string) []config.Workflow {
	var out []config.Workflow
	for p, fs := range e.flows {
		if partner != "" && p != partner {
			continue
		}
		for _, f := range fs {
			out = append(out, f.cfg)
		}
	}
	return out
}

// Accept stores a partner's events, in order, with the runs they start and
// the runs their exit events cancel, in one transaction; it returns after
// the commit. An event whose id was already accepted is a no-op.
func (e *Engine) Accept(ctx context.Context, events []store.Event) ([]store.EventResult, error) {
	return e.accept(ctx, events, 0, 0)
}

// AcceptFile is Accept for the events of an events/ file, which it marks
// read (queued, with its rows) in the same transaction.
func (e *Engine) AcceptFile(ctx context.Context, fileID int64, rows int, events []store.Event) ([]store.EventResult, error) {
	return e.accept(ctx, events, fileID, rows)
}

// writeBufs and startBufs keep the lists of a few batches of up to 2,048
// events (accept).
var (
	writeBufs = freelist.New[store.EventWrite](8, 2048)
	startBufs = freelist.New[store.RunStart](8, 2048)
)

func (e *Engine) accept(ctx context.Context, events []store.Event, fileID int64, rows int) ([]store.EventResult, error) {
	now := e.clock.Now()
	// The writes and the batch's starts come from free lists and go back
	// once stored (internal/freelist says why). The starts share one array
	// (a full slice each, so that a later append moves on rather than
	// overwriting): a run's slice per event was an allocation per event.
	writes := writeBufs.Get(len(events))
	defer writeBufs.Put(writes)
	starts := startBufs.Get(len(events))[:0]
	defer func() { startBufs.Put(starts) }()
	for i := range events {
		ev := &events[i]
		w := store.EventWrite{Event: *ev, Exits: e.exits[ev.Partner+"\x00"+ev.Name]}
		var values map[string]any // what when sees, read once per event
		from := len(starts)
		for _, f := range e.starts[ev.Partner+"\x00"+ev.Name] {
			if x := e.when[f]; x != nil {
				if values == nil {
					attrs, err := e.st.ContactAttributes(ctx, ev)
					if err != nil {
						return nil, err
					}
					values = whenValues(ev, attrs)
				}
				ok, err := x.Match(values)
				if err != nil {
					e.log.Info("workflow condition failed on an event; no run started", "partner", ev.Partner,
						"workflow", f.cfg.Name, "event", ev.Name, "error", err)
				}
				if !ok {
					continue
				}
			}
			step, due := f.first(now)
			status := store.RunWaiting
			if step >= len(f.steps) {
				status = store.RunDone
			}
			starts = append(starts, store.RunStart{Workflow: f.cfg.Name, Step: step, DueAt: due, Status: status, Reentry: f.reentry})
		}
		if len(starts) > from {
			w.Starts = starts[from:len(starts):len(starts)]
		}
		writes[i] = w
	}
	var res []store.EventResult
	var err error
	if fileID != 0 {
		res, err = e.st.AcceptEventsFile(ctx, fileID, rows, writes, now)
	} else {
		res, err = e.st.AcceptEvents(ctx, writes, now)
	}
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		if len(r.Started) > 0 {
			e.Wake()
			break
		}
	}
	return res, nil
}

// whenValues is what a workflow's when sees: the event's data, each value
// a number or boolean when it reads as one, and the event's own fields
// (event, email, phone, ref, key); the contact's attributes (contacts
// table) where the event has no value of that name; and both under data
// and contact, to name one side when both have a name.
func whenValues(ev *store.Event, attrs map[string]any) map[string]any {
	data := make(map[string]any, len(ev.Data))
	for k, s := range ev.Data {
		switch {
		case s == "true" || s == "false":
			data[k] = s == "true"
		default:
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				data[k] = f
			} else {
				data[k] = s
			}
		}
	}
	if attrs == nil {
		attrs = map[string]any{}
	}
	v := make(map[string]any, len(data)+len(attrs)+7)
	for k, x := range attrs {
		v[k] = x
	}
	for k, x := range data {
		v[k] = x
	}
	v["event"], v["email"], v["phone"], v["ref"], v["key"] = ev.Name, ev.Email, ev.Phone, ev.Ref, ev.Key
	v["data"], v["contact"] = data, attrs
	return v
}

// Wake makes the scheduler look at the earliest due time again (a run was
// stored, maybe earlier than the one it sleeps for).
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run is the scheduler: it fires overdue runs at once, in due order, then
// sleeps until the earliest due time or until woken, until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.closed || e.running {
		e.mu.Unlock()
		return errors.New("workflow engine closed or already running")
	}
	e.running = true
	e.mu.Unlock()
	defer close(e.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		wait, err := e.tick(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			e.log.Error("workflow scheduler failed; retrying", "error", err)
			wait = time.Second
		}
		var timer <-chan time.Time
		stop := func() bool { return false }
		if wait >= 0 {
			timer, stop = e.clock.Timer(wait)
		}
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-timer:
		case <-e.wake:
		}
		stop()
	}
}

// Close stops a running scheduler and waits for it.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.quit)
	running := e.running
	e.mu.Unlock()
	if running {
		<-e.done
	}
	return nil
}

// tick executes every run due now and returns how long to sleep until the
// next one (-1: none waits).
func (e *Engine) tick(ctx context.Context) (time.Duration, error) {
	// A full batch means more are due: the store checkpoints its WAL
	// rarely until the burst is over, as for a large file.
	burst := false
	defer func() {
		if burst {
			e.st.EndRunBurst(ctx)
		}
	}()
	for {
		p := e.prepare(ctx, e.clock.Now(), nil)
		took := len(p.runs) > 0
		moved := false
		for p.err == nil && len(p.runs) > 0 {
			// While a full batch is stored, the next one (after it in due
			// order) is read and executed: reading and rendering a batch
			// took as long as storing one. On PostgreSQL the node claims
			// its batches instead (prepare), one at a time, and other
			// nodes render the next ones meanwhile.
			var next chan prepared
			if len(p.runs) == e.batch && !e.st.Postgres() {
				if !burst {
					burst = true
					e.st.BeginRunBurst(ctx)
				}
				next = make(chan prepared, 1)
				last := p.runs[len(p.runs)-1]
				go func() { next <- e.prepare(ctx, e.clock.Now(), &last) }()
			}
			err := e.store(ctx, p)
			if err != nil && next != nil {
				<-next
			}
			if errors.Is(err, store.ErrRunMoved) {
				moved = true // cancelled meanwhile: read the runs again
				break
			}
			if err != nil {
				return 0, err
			}
			if next == nil {
				break
			}
			p = <-next
		}
		if p.err != nil {
			return 0, p.err
		}
		if moved {
			continue
		}
		// The due ranges of what was fired go (SQLite), before the next
		// due time is read from them.
		if err := e.st.PruneDueRanges(ctx, e.clock.Now()); err != nil {
			return 0, err
		}
		next, ok, err := e.st.NextRunDue(ctx)
		if err != nil || !ok {
			return -1, err
		}
		now := e.clock.Now()
		if d := next.Sub(now); d > 0 {
			return d, nil
		}
		if took {
			continue
		}
		// Runs are due but none could be claimed: other nodes hold them
		// (PostgreSQL). Sleep until the first of their claims lapses, in
		// case that node stopped; it moves them on well before.
		until, held, err := e.st.NextRunClaimEnd(ctx, e.node, now)
		if err != nil {
			return 0, err
		}
		if held {
			return max(until.Sub(now), time.Millisecond), nil
		}
	}
}

// prepared is a batch of due runs read and executed, not yet stored.
type prepared struct {
	runs []store.Run
	plan *store.AdvancePlan // the writes of the runs' steps, ready to store
	now  time.Time
	err  error
}

// prepare reads the runs due at now (after run after, if not nil) and
// executes their due steps.
func (e *Engine) prepare(ctx context.Context, now time.Time, after *store.Run) prepared {
	var runs []store.Run
	var err error
	switch {
	case e.st.Postgres():
		// Nodes sharing the database split the due runs: this node
		// renders only the runs it claimed (store.ClaimDueRuns).
		runs, err = e.st.ClaimDueRuns(ctx, e.node, now, now.Add(runClaimLease), e.batch)
	case after != nil:
		runs, err = e.st.DueRunsAfter(ctx, now, *after, e.batch)
	default:
		runs, err = e.st.DueRuns(ctx, now, e.batch)
	}
	if err != nil || len(runs) == 0 {
		return prepared{err: err}
	}
	advs, err := e.execute(ctx, runs, now)
	if err != nil {
		return prepared{err: err}
	}
	return prepared{runs: runs, plan: e.st.PlanAdvance(advs, now), now: now}
}

// store stores what a batch's steps did.
func (e *Engine) store(ctx context.Context, p prepared) error {
	jobs, err := e.st.StoreAdvance(ctx, p.plan)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		e.log.Info("workflow messages queued", "partner", j.Partner, "job", j.ID, "messages", j.Total)
	}
	return nil
}

// execute executes the due steps of a batch of runs.
func (e *Engine) execute(ctx context.Context, runs []store.Run, now time.Time) ([]store.RunAdvance, error) {
	b := &batch{composed: make(map[int64]composed, len(runs)), channels: map[string]templateChannel{}}
	e.precompose(ctx, b, runs, now)
	advs := make([]store.RunAdvance, 0, len(runs))
	for i := range runs {
		advs = append(advs, e.advance(ctx, b, &runs[i], now))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if b.err != nil {
		return nil, fmt.Errorf("cannot execute due steps: %w", b.err)
	}
	return advs, nil
}

// advance executes one run's due steps: every delay up to the next wait,
// at most one send (a second send waits for the next batch, at once).
func (e *Engine) advance(ctx context.Context, b *batch, r *store.Run, now time.Time) store.RunAdvance {
	a := store.RunAdvance{ID: r.ID, Partner: r.Partner, Workflow: r.Workflow, From: r.Step, To: r.Step, Status: store.RunWaiting, DueAt: now,
		Due: r.DueAt}
	f := e.flows[r.Partner][r.Workflow]
	if f == nil {
		a.Status, a.LastError = store.RunFailed, "the workflow is no longer in the configuration"
		a.Steps = append(a.Steps, store.RunStep{Step: r.Step, Outcome: store.StepFailed, Detail: a.LastError})
		return a
	}
	for a.To < len(f.steps) {
		st := f.steps[a.To]
		if !st.isSend() {
			a.DueAt = f.after(st, now)
			a.Steps = append(a.Steps, store.RunStep{Step: a.To, Outcome: store.StepWaiting, Detail: "until " + a.DueAt.UTC().Format(time.RFC3339)})
			a.To++
			return a
		}
		if a.Msg != nil {
			return a // due now, in the next batch
		}
		msg, outcome, detail, until := e.send(ctx, b, f, st, a.To == r.Step, r, now)
		switch outcome {
		case store.StepDeferred:
			a.DueAt = until
			a.Steps = append(a.Steps, store.RunStep{Step: a.To, Outcome: outcome, Detail: detail})
			return a
		case store.StepSuppressed, store.StepFailed:
			a.Status = store.RunSuppressed
			if outcome == store.StepFailed {
				a.Status, a.LastError = store.RunFailed, detail
			}
			a.Steps = append(a.Steps, store.RunStep{Step: a.To, Outcome: outcome, Detail: detail})
			return a
		}
		a.Msg = msg
		a.Steps = append(a.Steps, store.RunStep{Step: a.To, Outcome: store.StepQueued})
		a.To++
	}
	a.Status = store.RunDone
	return a
}

// send makes a send step's message, or says why not: deferred until the
// end of quiet hours, suppressed, or failed.
func (e *Engine) send(ctx context.Context, b *batch, f *flow, st step, first bool, r *store.Run, now time.Time) (*store.Message, string, string, time.Time) {
	tc := b.channel(ctx, e.comp, r.Partner, st.template)
	channel, field, err := tc.channel, tc.field, tc.err
	if err != nil && !isTemplateProblem(err) {
		b.fail(err)
		return nil, store.StepFailed, "", time.Time{}
	}
	if err != nil {
		return nil, store.StepFailed, fmt.Sprintf("template %q: %v", st.template, err), time.Time{}
	}
	if st.channel != "" && st.channel != channel {
		return nil, store.StepFailed, fmt.Sprintf("template %q is for channel %q, the step says %q", st.template, channel, st.channel), time.Time{}
	}
	to := r.Email
	if field == "phone" {
		to = r.Phone
		if end, quiet := f.quietUntil(now); quiet {
			return nil, store.StepDeferred, "quiet hours until " + end.UTC().Format(time.RFC3339), end
		}
	}
	if to == "" {
		return nil, store.StepFailed, fmt.Sprintf("template %q sends to a %s, and the contact has none", st.template, field), time.Time{}
	}
	c, ok := b.composed[r.ID]
	if !ok || !first {
		c = e.composeOne(ctx, r.Partner, st.template, recipient(r, to))
	}
	if c.err != nil {
		b.fail(c.err)
		return nil, store.StepFailed, "", time.Time{}
	}
	if c.problem != "" {
		return nil, store.StepFailed, c.problem, time.Time{}
	}
	m := c.msg
	sup, err := e.st.IsSuppressed(ctx, r.Partner, m.Channel, ingest.SuppressionKey(m.Recipient))
	if err != nil {
		b.fail(err)
		return nil, store.StepFailed, "", time.Time{}
	}
	if sup {
		return nil, store.StepSuppressed, m.Recipient + " is suppressed", time.Time{}
	}
	m.Ref = r.Ref
	return &m, store.StepQueued, "", time.Time{}
}

// batch is what the steps of one batch of runs share: their messages
// composed ahead, a template's channel looked up once.
type batch struct {
	composed map[int64]composed // by run id: its first send step's message
	channels map[string]templateChannel
	// err is a failure of the database or the context, not of a run: the
	// batch stores nothing and is tried again.
	err error
}

func (b *batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// isTemplateProblem reports whether err says the template cannot serve
// (none of that name, or a version the config no longer fits): the run
// fails. Any other error is the database's, and the batch is retried.
func isTemplateProblem(err error) bool {
	var te *ingest.TemplateError
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, ingest.ErrUnknownPartner) || errors.As(err, &te)
}

// composed is a send step's message, or why it cannot be made (problem),
// or the error that kept it from being made this time (err).
type composed struct {
	msg     store.Message
	problem string
	err     error
}

type templateChannel struct {
	channel, field string
	err            error
}

func (b *batch) channel(ctx context.Context, comp Composer, partner, template string) templateChannel {
	k := partner + "\x00" + template
	tc, ok := b.channels[k]
	if !ok {
		tc.channel, tc.field, tc.err = comp.TemplateChannel(ctx, partner, template)
		b.channels[k] = tc
	}
	return tc
}

// recipient is a run's addressee for a send to to: the starting event's
// data as variables, with email, phone, ref and key where the data has
// none of that name. The run's data map, decoded for this batch alone,
// becomes the variables (copying it into a new map per run cost more
// than rendering the message); adding the same values again is harmless.
func recipient(r *store.Run, to string) ingest.APIRecipient {
	if r.Data == nil {
		r.Data = make(map[string]string, 4)
	}
	vars := r.Data
	for _, kv := range [...][2]string{{"email", r.Email}, {"phone", r.Phone}, {"ref", r.Ref}, {"key", r.Key}} {
		if kv[1] == "" {
			continue
		}
		if _, ok := vars[kv[0]]; !ok {
			vars[kv[0]] = kv[1]
		}
	}
	return ingest.APIRecipient{To: to, Ref: r.Ref, Vars: vars}
}

// precompose renders, per partner and template, the messages of the runs
// whose due step is a send, with one Compose call each (as an API send of
// many recipients): per run, most of a step's cost was setting up the
// checks that one call shares. A group with a bad recipient is composed
// run by run instead, so that one bad run fails alone.
func (e *Engine) precompose(ctx context.Context, b *batch, runs []store.Run, now time.Time) {
	type group struct {
		partner, template string
		ids               []int64
		recipients        []ingest.APIRecipient
	}
	groups := map[string]*group{}
	var order []*group
	for i := range runs {
		r := &runs[i]
		f := e.flows[r.Partner][r.Workflow]
		if f == nil || r.Step >= len(f.steps) || !f.steps[r.Step].isSend() {
			continue
		}
		st := f.steps[r.Step]
		tc := b.channel(ctx, e.comp, r.Partner, st.template)
		if tc.err != nil || (st.channel != "" && st.channel != tc.channel) {
			continue
		}
		to := r.Email
		if tc.field == "phone" {
			if _, quiet := f.quietUntil(now); quiet {
				continue
			}
			to = r.Phone
		}
		if to == "" {
			continue
		}
		k := r.Partner + "\x00" + st.template
		g := groups[k]
		if g == nil {
			g = &group{partner: r.Partner, template: st.template}
			groups[k] = g
			order = append(order, g)
		}
		g.ids = append(g.ids, r.ID)
		g.recipients = append(g.recipients, recipient(r, to))
	}
	for _, g := range order {
		for start := 0; start < len(g.ids); start += ingest.MaxAPIRecipients {
			end := min(start+ingest.MaxAPIRecipients, len(g.ids))
			msgs, problems, err := e.comp.Compose(ctx, g.partner, ingest.APISend{Template: g.template, Recipients: g.recipients[start:end]})
			if err != nil || len(problems) > 0 || len(msgs) != end-start {
				continue // each run composes its own, with its own problems
			}
			for i, m := range msgs {
				b.composed[g.ids[start+i]] = composed{msg: m}
			}
		}
	}
}

// composeOne renders one run's message, or says why it cannot be made.
func (e *Engine) composeOne(ctx context.Context, partner, template string, rc ingest.APIRecipient) composed {
	msgs, problems, err := e.comp.Compose(ctx, partner, ingest.APISend{Template: template, Recipients: []ingest.APIRecipient{rc}})
	if err != nil {
		return composed{err: err}
	}
	if len(problems) > 0 {
		var b strings.Builder
		for i, p := range problems {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(strings.TrimPrefix(p.Field, "recipients[0]."))
			b.WriteString(": ")
			b.WriteString(p.Message)
		}
		return composed{problem: b.String()}
	}
	return composed{msg: msgs[0]}
}
