package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/dropgate/dropgate/internal/freelist"
)

// A batch of events is written with a few statements per batch rather
// than three per event (workflow/BENCHMARKS.md, session 5): the ids the
// partner already sent and the contacts' latest runs are read once per
// partner with json_each, the new events and runs get their ids from the
// tables' largest (the transaction holds the only writer; on PostgreSQL
// reserved ranges, events_pg.go) and go in
// multi-row inserts of up to eventChunk rows. On SQLite (events_raw.go,
// session 7) those inserts go through the driver, binding shared values
// once, and the ids and contacts are looked up by their hash keys
// (keyhash.go, session 12); runs are counted once per insert (countRuns),
// not by a trigger per run.

// eventChunk is the most rows one multi-row insert of events or runs
// writes; smaller remainders go in power-of-two shapes so that a few
// statements stay prepared.
const eventChunk = 64

const (
	eventCols = 11
	runCols   = 11
	// knownEventsSQL reads which of a partner's event ids are stored
	// (PostgreSQL).
	knownEventsSQL = `SELECT event_id FROM events WHERE partner = ? AND event_id <> '' AND event_id IN (SELECT value FROM json_each(?))`
	// knownEventsSQLite reads the events whose id keys are among a list
	// (keyhash.go) in the settled level, and the events of a list of ids
	// (the recent keys', found in memory), of every partner at once: the
	// caller compares their ids. Each key of the list is looked up in turn
	// (CROSS JOIN keeps json_each outside): as an IN list the keys were
	// first sorted into a temporary B-tree, a fifth of an event's writer
	// time.
	knownEventsSQLite = `SELECT e.partner, e.event_id FROM json_each(?1) j CROSS JOIN event_keys k CROSS JOIN events e
		WHERE k.hash = j.value AND e.id = k.event
		UNION ALL SELECT e.partner, e.event_id FROM json_each(?2) j CROSS JOIN events e WHERE e.id = j.value`
	// latestRunsSQL reads the latest run of a partner's workflow for each
	// of a list of contacts, given by their settled keys (keyhash.go) and
	// their recent runs' ids, looked up as knownEventsSQLite's: the bare
	// columns come from the row of MAX(id), and a run of another contact
	// with the same key comes as that contact's.
	latestRunsSQL = `SELECT contact, status, created_at, MAX(id) FROM (
		SELECT r.contact, r.status, r.created_at, r.id FROM json_each(?3) j CROSS JOIN run_keys k CROSS JOIN workflow_runs r
		WHERE k.hash = j.value AND r.id = k.run AND r.partner = ?1 AND r.workflow = ?2
		UNION ALL SELECT r.contact, r.status, r.created_at, r.id FROM json_each(?4) j CROSS JOIN workflow_runs r
		WHERE r.id = j.value AND r.partner = ?1 AND r.workflow = ?2) GROUP BY contact`
	// runCountsAddSQL counts started runs (countRuns).
	runCountsAddSQL = `INSERT INTO workflow_run_counts (partner, workflow, status, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (partner, workflow, status) DO UPDATE SET n = workflow_run_counts.n + excluded.n`
	maxEventIDSQL = `SELECT COALESCE(MAX(id), 0) FROM events`
	maxRunIDSQL   = `SELECT COALESCE(MAX(id), 0) FROM workflow_runs`
)

func eventInsertRowsSQL(n int) string {
	return `INSERT INTO events (id, partner, event_id, name, email, phone, ref, key, data, source, occurred_at, received_at) VALUES ` +
		valuesList(n, eventCols+1)
}

func runInsertRowsSQL(n int) string {
	return `INSERT INTO workflow_runs (id, partner, workflow, contact, key, status, step, due_at, event_id, created_at, updated_at)
		VALUES ` + valuesList(n, runCols)
}

// eventShapes are the statements a batch may use, to prepare before its
// transaction.
func (s *Store) eventShapes() []string {
	qs := []string{s.latestRunsQuery(), s.runExitQuery(), s.runLatestQuery(), runCountsAddSQL}
	if !s.pg {
		return append(qs, knownEventsSQLite, maxEventIDSQL, maxRunIDSQL, dueRangeInsertSQL(1), // inserts: events_raw.go
			markKeysSQL)
	}
	qs = append(qs, knownEventsSQL)
	for n := eventChunk; n > 0; n /= 2 {
		qs = append(qs, eventInsertRowsSQL(n), runInsertRowsSQL(n))
	}
	return qs
}

// latestRun is what reentry needs of a contact's latest run of a workflow.
type latestRun struct {
	found   bool
	status  string
	created int64
}

// eventBatch is one acceptEvents transaction's state.
type eventBatch struct {
	s       *Store
	ctx     context.Context
	tx      *sql.Tx
	conn    *sql.Conn // the writer's connection, for insertRaw; nil on PostgreSQL
	now     int64
	nowArg  any // now, boxed once for every row that binds it
	nextEv  int64
	nextRun int64
	latest  map[string]latestRun // partner \x00 contact \x00 workflow
	started []int64              // the runs started, each event's Started a slice of it
	keys    *runKeys             // SQLite: the filters and the recent keys (events_runkeys.go); nil on PostgreSQL
	prep    []eventPrep          // per event, made before the writer was taken
	evArgs  []any
	evRows  int
	runArgs []any
	runRows int
	scratch *eventScratch
	// committed is set once the transaction is: the recent keys the batch
	// noted and settled are kept (events_runkeys.go).
	committed bool
}

// eventScratch is what a batch needs only while it runs: kept for the
// next batch (eventScratches) rather than made again, a batch's maps and
// argument lists were a tenth of an event's garbage, and the collector's
// work grows with both the garbage and the live batches it scans
// (workflow/BENCHMARKS.md, session 11).
type eventScratch struct {
	latest          map[string]latestRun
	known           map[string]bool
	evArgs, runArgs []any
}

// eventScratches keeps the scratch of a few batches (a file's and an API
// group's may run at once); not a sync.Pool, which every second
// collection empties (internal/freelist says why that matters here).
var eventScratches = make(chan *eventScratch, 4)

func getEventScratch() *eventScratch {
	select {
	case sc := <-eventScratches:
		return sc
	default:
		return &eventScratch{latest: map[string]latestRun{}, known: map[string]bool{}}
	}
}

// put empties sc (it keeps no event's values alive) and gives it back.
func (sc *eventScratch) put() {
	// A map keeps its size when cleared: one of a 10,000-event batch is
	// let go rather than kept for batches of the usual 1,000.
	if len(sc.latest) > 4096 {
		sc.latest = map[string]latestRun{}
	}
	if len(sc.known) > 4096 {
		sc.known = map[string]bool{}
	}
	clear(sc.latest)
	clear(sc.known)
	for _, a := range [][]any{sc.evArgs, sc.runArgs} {
		clear(a[:cap(a)])
	}
	select {
	case eventScratches <- sc:
	default:
	}
}

func latestKey(partner, contact, workflow string) string {
	return partner + "\x00" + contact + "\x00" + workflow
}

func (b *eventBatch) stmt(q string) *sql.Stmt {
	st, _ := b.s.txStmt(b.ctx, b.tx, q) // prepared by acceptEvents
	return st
}

// readKnown returns the stored event ids among the batch's (partner \x00
// id), in known.
func (b *eventBatch) readKnown(events []EventWrite, known map[string]bool) error {
	if b.s.pg {
		return b.readKnownPG(events, known)
	}
	// One list of keys for every partner (a key hashes the partner too),
	// written as it goes, as readLatest's lists are, and one of the ids
	// the recent level has for them.
	js := make([]byte, 0, 21*len(events)+2)
	var recent []int64
	for i := range events {
		p := &b.prep[i]
		if p.known == "" || !b.keys.events.mayHave(p.idKey) {
			continue // no id, or one never sent
		}
		recent = b.keys.recentEvents.appendIDs(recent, p.idKey)
		if len(js) == 0 {
			js = append(js, '[')
		} else {
			js = append(js, ',')
		}
		js = strconv.AppendInt(js, p.idKey, 10)
	}
	if len(js) == 0 {
		return nil
	}
	list := string(append(js, ']'))
	rows, err := b.stmt(knownEventsSQLite).QueryContext(b.ctx, list, idList(recent))
	if err != nil {
		return fmt.Errorf("cannot read the stored event ids: %w", err)
	}
	defer rows.Close()
	var partner, id string
	for rows.Next() {
		if err := rows.Scan(&partner, &id); err != nil {
			return err
		}
		known[partner+"\x00"+id] = true
	}
	return rows.Err()
}

// readKnownPG is readKnown on PostgreSQL: by the ids' text, one read per
// partner.
func (b *eventBatch) readKnownPG(events []EventWrite, known map[string]bool) error {
	ids := map[string][]string{}
	for i := range events {
		e := &events[i].Event
		if e.EventID != "" {
			ids[e.Partner] = append(ids[e.Partner], e.EventID)
		}
	}
	for p, list := range ids {
		js, _ := json.Marshal(list)
		rows, err := b.stmt(knownEventsSQL).QueryContext(b.ctx, p, string(js))
		if err != nil {
			return fmt.Errorf("cannot read the stored event ids: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			known[p+"\x00"+id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// readLatest reads the latest run of every contact of the batch, for
// each workflow it starts: one read per partner and workflow.
func (b *eventBatch) readLatest(events []EventWrite) error {
	// The contacts' JSON lists are written as they are found (a set of
	// contacts per partner and workflow, no json.Marshal): this read's
	// garbage was a tenth of a batch's.
	type wfContacts struct {
		partner, workflow string
		seen              map[string]bool
		js                []byte
		recent            []int64 // SQLite: the contacts' recent runs (keyhash.go)
	}
	var lists []*wfContacts
	for i := range events {
		e := &events[i].Event
		c := b.prep[i].contact
		for j, rs := range events[i].Starts {
			if !b.s.pg && !b.keys.runs.mayHave(b.prep[i].starts[j].key) {
				continue // no run of it: nothing to read
			}
			var wc *wfContacts
			for _, l := range lists { // a handful: the workflows an event name starts
				if l.partner == e.Partner && l.workflow == rs.Workflow {
					wc = l
					break
				}
			}
			if wc == nil {
				wc = &wfContacts{partner: e.Partner, workflow: rs.Workflow, seen: make(map[string]bool, len(events)-i),
					js: make([]byte, 0, 32*(len(events)-i))}
				lists = append(lists, wc)
			}
			if wc.seen[c] {
				continue
			}
			wc.seen[c] = true
			if len(wc.js) == 0 {
				wc.js = append(wc.js, '[')
			} else {
				wc.js = append(wc.js, ',')
			}
			if b.s.pg {
				wc.js = appendJSONString(wc.js, c)
			} else { // by key: keyhash.go
				key := b.prep[i].starts[j].key
				wc.js = strconv.AppendInt(wc.js, key, 10)
				wc.recent = b.keys.recentRuns.appendIDs(wc.recent, key)
			}
		}
	}
	for _, wc := range lists {
		wc.js = append(wc.js, ']')
		args := []any{wc.partner, wc.workflow, string(wc.js)}
		if !b.s.pg {
			args = append(args, idList(wc.recent))
		}
		rows, err := b.stmt(b.s.latestRunsQuery()).QueryContext(b.ctx, args...)
		if err != nil {
			return fmt.Errorf("cannot read the contacts' runs: %w", err)
		}
		for rows.Next() {
			var c string
			var l latestRun
			var id int64
			if err := rows.Scan(&c, &l.status, &l.created, &id); err != nil {
				rows.Close()
				return err
			}
			l.found = true
			b.latest[latestKey(wc.partner, c, wc.workflow)] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// reread reads one contact's latest run of a workflow again, after an
// exit changed it.
func (b *eventBatch) reread(partner, contact, workflow string) error {
	var l latestRun
	err := b.stmt(b.s.runLatestQuery()).QueryRowContext(b.ctx, b.runKeyArgs(partner, contact, workflow)...).Scan(&l.status, &l.created)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return fmt.Errorf("cannot read the runs of %s: %w", workflow, err)
	default:
		l.found = true
	}
	b.latest[latestKey(partner, contact, workflow)] = l
	return nil
}

// flushEvents and flushRuns insert the pending rows, in chunks.
func (b *eventBatch) flushEvents() error {
	err := b.flush(&eventsTable, b.evArgs, b.evRows, eventInsertRowsSQL)
	b.evArgs, b.evRows = b.evArgs[:0], 0
	if err != nil {
		return fmt.Errorf("cannot store events: %w", err)
	}
	return nil
}

func (b *eventBatch) flushRuns() error {
	err := b.flush(&runsTable, b.runArgs, b.runRows, runInsertRowsSQL)
	if err == nil {
		err = b.countRuns()
	}
	if err == nil {
		err = b.recordDueRanges() // workflow_due.go
	}
	b.runArgs, b.runRows = b.runArgs[:0], 0
	if err != nil {
		return fmt.Errorf("cannot start runs: %w", err)
	}
	return nil
}

// countRuns adds the pending runs to workflow_run_counts, one upsert per
// partner, workflow and status (migration 0038: no trigger counts an
// inserted run). It runs with every insert of runs, before an exit may
// move them, so that the status trigger finds their count. The rows are
// taken in a fixed order: on PostgreSQL another node's scheduler locks
// the same rows.
func (b *eventBatch) countRuns() error {
	type group struct{ partner, workflow, status string }
	counts := map[group]int64{}
	for i := 0; i < b.runRows*runCols; i += runCols {
		counts[group{b.runArgs[i+1].(string), b.runArgs[i+2].(string), b.runArgs[i+5].(string)}]++
	}
	groups := slices.SortedFunc(maps.Keys(counts), func(x, y group) int {
		return cmp.Or(cmp.Compare(x.partner, y.partner), cmp.Compare(x.workflow, y.workflow), cmp.Compare(x.status, y.status))
	})
	for _, g := range groups {
		if _, err := b.stmt(runCountsAddSQL).ExecContext(b.ctx, g.partner, g.workflow, g.status, counts[g]); err != nil {
			return fmt.Errorf("cannot count runs: %w", err)
		}
	}
	return nil
}

// flush inserts rows of t; q is PostgreSQL's statement of n rows (nil:
// a table of SQLite's only).
func (b *eventBatch) flush(t *rawTable, args []any, rows int, q func(int) string) error {
	if rows == 0 {
		return nil
	}
	if b.conn != nil { // SQLite: events_raw.go
		return b.conn.Raw(func(dc any) error {
			return b.s.evRaw.insertRaw(b.ctx, dc, t, args, rows)
		})
	}
	width := len(t.cols)
	for _, n := range chunkSizes(rows, eventChunk) {
		if _, err := b.stmt(q(n)).ExecContext(b.ctx, args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}

// eventPrep is what a batch writes of an event that takes no database,
// made before the writer is taken (prepareEvents), on the caller's
// goroutine, while another batch may be written: its data as JSON, its
// contact, its row's and its runs' arguments boxed (the ids, times of
// receipt and event id left to the batch), the keys of its within-batch
// repeat and latest-run lookups and its hash keys (keyhash.go). Made on
// the writer, these were a fifth of its time per event
// (workflow/BENCHMARKS.md, session 10).
type eventPrep struct {
	data, contact string
	known         string // partner \x00 event id; "" for none
	idKey         int64  // its id's key (when known is not "")
	ev            [eventCols + 1]any
	starts        []startPrep
}

// startPrep is one RunStart of an event, prepared.
type startPrep struct {
	latest string // latestKey
	status string
	key    int64 // the run's contact key (keyhash.go)
	run    [runCols]any
}

// preparedEvents is prepareEvents' work: per event, and the runs' array
// the events' starts share, taken from free lists (internal/freelist) and
// given back by release once the batch is stored.
type preparedEvents struct {
	ev     []eventPrep
	starts []startPrep
}

// prepBufs and startBufs keep the arrays of a few batches of up to
// 2,048 events (the API's usual 1,000, not its largest 10,000).
var (
	prepBufs  = freelist.New[eventPrep](8, 2048)
	startBufs = freelist.New[startPrep](8, 2048)
)

// release gives the arrays back; nothing may use them after.
func (pe preparedEvents) release() {
	prepBufs.Put(pe.ev)
	startBufs.Put(pe.starts)
}

func prepareEvents(events []EventWrite) preparedEvents {
	out := prepBufs.Get(len(events))
	n := 0
	for i := range events {
		n += len(events[i].Starts)
	}
	starts := startBufs.Get(n)
	all := starts
	var box boxes
	for i := range events {
		ew := &events[i]
		e := &ew.Event
		p := &out[i]
		p.data = "{}"
		if len(e.Data) > 0 {
			p.data = varsJSON(e.Data)
		}
		p.contact = e.Contact()
		if e.EventID != "" {
			p.known = e.Partner + "\x00" + e.EventID
		}
		var occurred any // nil: when received
		if !e.OccurredAt.IsZero() {
			occurred = ms(e.OccurredAt)
		}
		p.idKey = 0
		if e.EventID != "" {
			p.idKey = eventKeyHash(e.Partner, e.EventID)
		}
		partner := box.of(boxPartner, e.Partner)
		p.ev = [eventCols + 1]any{nil, partner, e.EventID, box.of(boxName, e.Name), e.Email, e.Phone, e.Ref, e.Key, p.data, box.of(boxSource, e.Source), occurred, nil}
		p.starts, starts = starts[:len(ew.Starts):len(ew.Starts)], starts[len(ew.Starts):]
		for j, rs := range ew.Starts {
			st := rs.Status
			if st == "" {
				st = RunWaiting
			}
			key := runKeyOf(e.Partner, rs.Workflow, p.contact)
			p.starts[j] = startPrep{latest: latestKey(e.Partner, p.contact, rs.Workflow), status: st, key: key,
				run: [runCols]any{nil, partner, box.of(boxWorkflow, rs.Workflow), p.contact, e.Key, box.of(boxStatus, st), int64(rs.Step),
					box.ofInt(ms(rs.DueAt)), nil, nil, nil}}
		}
	}
	return preparedEvents{ev: out, starts: all}
}

// boxes boxes the values that a batch's rows mostly share (partner, event
// name, workflow, due time...) once for as long as they repeat: boxed per
// row they were half of prepareEvents' allocations.
type boxes struct {
	strs [boxSlots]string
	ints int64
	v    [boxSlots + 1]any
}

const (
	boxPartner = iota
	boxName
	boxSource
	boxWorkflow
	boxStatus
	boxSlots
)

// of is s boxed, the box of the slot's previous value when s is the same.
func (b *boxes) of(slot int, s string) any {
	if b.v[slot] == nil || b.strs[slot] != s {
		b.strs[slot], b.v[slot] = s, s
	}
	return b.v[slot]
}

// ofInt is of for the one integer slot (a run's due time).
func (b *boxes) ofInt(n int64) any {
	if b.v[boxSlots] == nil || b.ints != n {
		b.ints, b.v[boxSlots] = n, n
	}
	return b.v[boxSlots]
}

// acceptEvents stores events in one transaction; prep is
// prepareEvents(events), or nil to make it here.
func (s *Store) acceptEvents(ctx context.Context, events []EventWrite, prep []eventPrep, now time.Time, fileID int64, rows int) ([]EventResult, error) {
	if prep == nil {
		pe := prepareEvents(events)
		defer pe.release()
		prep = pe.ev
	}
	return retryDeadlocks(s, func() ([]EventResult, error) { // workflow_pg.go
		return s.acceptEventsOnce(ctx, events, prep, now, fileID, rows)
	})
}

func (s *Store) acceptEventsOnce(ctx context.Context, events []EventWrite, prep []eventPrep, now time.Time, fileID int64, rows int) ([]EventResult, error) {
	// The transaction is bounded (10,000 events at most from the API) and
	// runs to its end: with a cancellable context the driver starts a
	// goroutine per statement to watch it, a fifth of an event's cost.
	ctx = context.WithoutCancel(ctx)
	if err := s.prepare(ctx, s.eventShapes()...); err != nil {
		return nil, err
	}
	var conn *sql.Conn
	if !s.pg {
		c, err := s.writer.Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		conn = c
	}
	var tx *sql.Tx
	var err error
	if conn != nil {
		tx, err = conn.BeginTx(ctx, nil)
	} else {
		tx, err = s.writer.BeginTx(ctx, nil)
	}
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	sc := getEventScratch()
	defer sc.put()
	b := &eventBatch{s: s, ctx: ctx, tx: tx, conn: conn, now: ms(now), nowArg: ms(now), latest: sc.latest, prep: prep,
		started: make([]int64, 0, countStarts(events)), scratch: sc, evArgs: sc.evArgs[:0], runArgs: sc.runArgs[:0]}
	defer func() { // grown, kept for the next batch
		sc.evArgs, sc.runArgs = b.evArgs, b.runArgs
	}()
	if s.pg {
		if err := b.reserveIDsPG(events); err != nil { // events_pg.go
			return nil, err
		}
	} else {
		var dc any
		_ = conn.Raw(func(c any) error { dc = c; return nil }) // compared only, not used
		keys, done, err := s.runKeys.ready(ctx, tx, dc)
		if err != nil {
			return nil, err
		}
		defer func() { done(b.committed) }()
		b.keys = keys
		if err := b.stmt(maxEventIDSQL).QueryRowContext(ctx).Scan(&b.nextEv); err != nil {
			return nil, fmt.Errorf("cannot read the last event id: %w", err)
		}
		if err := b.stmt(maxRunIDSQL).QueryRowContext(ctx).Scan(&b.nextRun); err != nil {
			return nil, fmt.Errorf("cannot read the last run id: %w", err)
		}
	}
	out := make([]EventResult, len(events))
	known := sc.known
	if err := b.readKnown(events, known); err != nil {
		return nil, err
	}
	if err := b.readLatest(events); err != nil {
		return nil, err
	}
	for i := range events {
		if err := b.accept(i, &events[i], &out[i], known); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
	}
	if err := b.flushEvents(); err != nil {
		return nil, err
	}
	if err := b.flushRuns(); err != nil {
		return nil, err
	}
	if !s.pg {
		if err := b.settleKeys(); err != nil { // keyhash.go
			return nil, err
		}
	}
	if err := checkFenceTx(ctx, tx); err != nil { // fileclaims.go
		return nil, err
	}
	if fail := s.evGroups.fail.Load(); fail != nil && fileID == 0 {
		if err := (*fail)(events); err != nil {
			return nil, err
		}
	}
	if fileID != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE files SET status = ?, rows_total = ?, updated_at = ? WHERE id = ?`,
			FileQueued, rows, ms(now), fileID); err != nil {
			return nil, fmt.Errorf("cannot record file %d: %w", fileID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	b.committed = true
	return out, nil
}

// accept does what one event does, in order: a repeat of a stored (or
// earlier in the batch) id nothing; else its exits cancel the contact's
// waiting runs (pending rows written first, so that runs started earlier
// in the batch are among them), then its starts start runs.
func (b *eventBatch) accept(i int, ew *EventWrite, res *EventResult, known map[string]bool) error {
	id, ok, err := b.admit(i, ew, known)
	if err != nil {
		return err
	}
	if !ok {
		res.Duplicate = true
		return nil
	}
	return b.act(i, ew, res, id)
}

// admit gives an event (the batch's i-th) that is not a repeat (of a
// stored id or of one earlier in the batch) its id and its pending row;
// ok is false for a repeat.
func (b *eventBatch) admit(i int, ew *EventWrite, known map[string]bool) (id int64, ok bool, err error) {
	p := &b.prep[i]
	if p.known != "" {
		if known[p.known] {
			return 0, false, nil
		}
		known[p.known] = true
	}
	b.nextEv++
	id = b.nextEv
	row := len(b.evArgs)
	b.evArgs = append(b.evArgs, p.ev[:]...)
	b.evArgs[row] = id
	if b.evArgs[row+10] == nil {
		b.evArgs[row+10] = b.nowArg // occurred_at: when received
	}
	b.evArgs[row+11] = b.nowArg
	b.evRows++
	if p.known != "" && b.keys != nil { // SQLite: keyhash.go
		b.keys.recentEvents.add(p.idKey, id)
		b.keys.events.add(p.idKey)
	}
	if b.evRows == eventChunk*4 {
		if err := b.flushEvents(); err != nil {
			return 0, false, err
		}
	}
	return id, true, nil
}

// act does what an admitted event (the batch's i-th) does: its exits,
// then its starts.
func (b *eventBatch) act(i int, ew *EventWrite, res *EventResult, id int64) error {
	e := &ew.Event
	res.ID = id
	contact := b.prep[i].contact
	if len(ew.Exits) > 0 {
		if err := b.flushEvents(); err != nil {
			return err
		}
		if err := b.flushRuns(); err != nil {
			return err
		}
		for _, wf := range ew.Exits {
			args := append([]any{id, b.now}, b.runKeyArgs(e.Partner, contact, wf)...)
			r, err := b.stmt(b.s.runExitQuery()).ExecContext(b.ctx, append(args, e.Key, e.Key)...)
			if err != nil {
				return fmt.Errorf("cannot cancel runs of %s: %w", wf, err)
			}
			n, _ := r.RowsAffected()
			res.Cancelled += int(n)
			// No trigger counts them (migration 0042).
			if err := countRunsMovedTx(b.ctx, b.tx, e.Partner, wf, RunCancelled, int(n)); err != nil {
				return err
			}
			if n > 0 {
				if err := b.reread(e.Partner, contact, wf); err != nil {
					return err
				}
			}
		}
	}
	p := &b.prep[i]
	var idArg any
	first := len(b.started)
	for j, rs := range ew.Starts {
		k := p.starts[j].latest
		l := b.latest[k]
		switch {
		case !l.found:
		case l.status == RunWaiting, rs.Reentry < 0:
			continue
		case rs.Reentry > 0 && b.now < l.created+rs.Reentry.Milliseconds():
			continue
		}
		b.nextRun++
		if idArg == nil {
			idArg = id
		}
		// The run's addresses and data are its event's (migration 0046).
		row := len(b.runArgs)
		b.runArgs = append(b.runArgs, p.starts[j].run[:]...)
		b.runArgs[row], b.runArgs[row+8], b.runArgs[row+9], b.runArgs[row+10] = b.nextRun, idArg, b.nowArg, b.nowArg
		b.runRows++
		if b.runRows == eventChunk*4 {
			if err := b.flushRuns(); err != nil {
				return err
			}
		}
		b.latest[k] = latestRun{found: true, status: p.starts[j].status, created: b.now}
		if b.keys != nil { // SQLite: keyhash.go
			b.keys.recentRuns.add(p.starts[j].key, b.nextRun)
			b.keys.runs.add(p.starts[j].key)
		}
		b.started = append(b.started, b.nextRun)
	}
	if n := len(b.started); n > first {
		res.Started = b.started[first:n:n]
	}
	return nil
}

func countStarts(events []EventWrite) int {
	n := 0
	for i := range events {
		n += len(events[i].Starts)
	}
	return n
}
