package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropgate/dropgate/segment"
	"github.com/dropgate/dropgate/store"
)

// List sends: a template sent to the subscribed members of a list that a
// segment chooses (POST /api/v1/lists/{list}/sends, sends/<name>.toml).
// Each matched contact's message is checked and rendered exactly as a CSV
// row of the same partner (rows.go): the recipient the template's channel
// needs, every variable the template uses, a successful render; what was
// checked is what is sent. A contact that cannot be messaged is reported
// with the job, like a rejected row, and the others are queued.

// Contact fields a segment and a template see beside the attributes.
const (
	fieldEmail = "email"
	fieldPhone = "phone"
	fieldRef   = "ref"
)

// ListSendRequest is a list send before any check.
type ListSendRequest struct {
	List     string
	Template string
	// Segment is an expression over the contact (segment package); ""
	// chooses every subscribed member.
	Segment string
	// SendAt is RFC 3339 or "YYYY-MM-DD HH:MM" in the partner's time zone,
	// as in a CSV's send_at column; "" sends now.
	SendAt string
	// DryRun counts the members the segment matches and queues nothing.
	DryRun bool
}

// ListSendResult is what a list send did.
type ListSendResult struct {
	DryRun bool  `json:"dry_run"`
	JobID  int64 `json:"job_id,omitempty"`
	// Considered is the number of subscribed members read.
	Considered int `json:"considered"`
	// Matched is the number the segment chose.
	Matched int `json:"matched"`
	// SkippedByError is the number the segment could not be evaluated on
	// (an attribute missing where a number is compared): not sent.
	SkippedByError int    `json:"skipped_by_error"`
	FirstSkipError string `json:"first_skip_error,omitempty"`
	// Rejected is the number matched whose message could not be made;
	// Queued the number of messages queued. Both 0 in a dry run.
	Rejected int `json:"rejected"`
	Queued   int `json:"queued"`
	// Errors are the rejected contacts, up to maxListedErrors.
	Errors []store.ListSendError `json:"-"`
}

// SendProblem is one thing wrong with a list send request; for the
// segment, Line and Column are where in the expression.
type SendProblem struct {
	Problem
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// SendToList checks a list send of a partner and, unless it is a dry run,
// queues it as one job of source list. The list must be the partner's
// (else an error wrapping store.ErrNotFound); a bad template, segment or
// send_at is a problem, and nothing is queued. The work is done before it
// returns: its answer has the counts and the job.
func (in *Ingester) SendToList(ctx context.Context, partnerName string, req ListSendRequest) (ListSendResult, []SendProblem, error) {
	p := in.partners[partnerName]
	if p == nil {
		return ListSendResult{}, nil, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	return in.sendToList(ctx, p, req, 0, "lists/"+req.List)
}

// listSend is one list send being made.
type listSend struct {
	in   *Ingester
	p    *partner
	req  ListSendRequest
	list store.List
	t    *messageTemplate
	expr *segment.Expr // nil: every member
	m0   store.Message
	dec  *attrDecoder // cloned by each worker
	res  ListSendResult
	w    *store.JobWriter
	keys store.MemberKeys // the contact keys read with each member
	// fieldValue and fieldText say which of email, phone and ref (in
	// that order) the segment reads as values and the template as text:
	// the others are not put in a member's maps (two map writes and a
	// boxing each, for every member read).
	fieldValue, fieldText [3]bool
	// spent are message slices whose messages the job writer has taken,
	// for the workers to fill again: a fresh slice per range was most
	// of a send's garbage.
	spent chan []store.Message
}

// sendToList is SendToList for a checked partner; fileID and name are
// the job's file (a sends/ drop) and the name it is shown under.
func (in *Ingester) sendToList(ctx context.Context, p *partner, req ListSendRequest, fileID int64, name string) (ListSendResult, []SendProblem, error) {
	ls := &listSend{in: in, p: p, req: req}
	ls.res.DryRun = req.DryRun
	if problems, err := ls.check(ctx); err != nil || len(problems) > 0 {
		return ListSendResult{}, problems, err
	}
	fields, err := in.st.ContactFields(ctx, p.cfg.Name)
	if err != nil {
		return ListSendResult{}, nil, err
	}
	wantValues := ls.wantedValues()
	wantTexts := ls.wantedTexts()
	ls.dec = newAttrDecoder(fields, wantValues, wantTexts)
	ls.keys = ls.memberKeys(wantValues, wantTexts)
	for i, f := range [...]string{fieldEmail, fieldPhone, fieldRef} {
		ls.fieldValue[i] = wantValues == nil || wantValues[f]
		ls.fieldText[i] = wantTexts == nil || wantTexts[f]
	}
	if !req.DryRun {
		if in.applying != nil && fileID != 0 {
			in.applying(name)
		}
		if ls.w, err = in.st.BeginListJob(ctx, p.cfg.Name, fileID, name, in.cfg.Ingest.BatchSize); err != nil {
			return ListSendResult{}, nil, err
		}
		// Abort does nothing once committed; on every other way out it
		// removes the job, so nothing half-made is ever sent.
		defer ls.w.Abort(context.WithoutCancel(ctx))
		if fileID != 0 {
			in.holdClaim(ls.w, p, name) // claims.go: queued only while the sends/ file is still this node's
		}
	}
	if problem, err := ls.run(ctx); err != nil || problem != nil {
		if problem != nil {
			return ListSendResult{}, []SendProblem{*problem}, nil
		}
		return ListSendResult{}, nil, err
	}
	if req.DryRun {
		return ls.res, nil, nil
	}
	ls.res.JobID = ls.w.JobID()
	if err := in.st.RecordListSend(ctx, store.ListSend{JobID: ls.res.JobID, ListID: ls.list.ID, List: ls.list.Name,
		Template: ls.t.name, TemplateVersion: ls.t.version, Segment: req.Segment,
		Considered: ls.res.Considered, Matched: ls.res.Matched, SkippedByError: ls.res.SkippedByError,
		FirstSkipError: ls.res.FirstSkipError, Rejected: ls.res.Rejected, Errors: ls.res.Errors}); err != nil {
		return ListSendResult{}, nil, err
	}
	if err := ls.w.Commit(ctx, ls.res.Considered, nil); err != nil {
		return ListSendResult{}, nil, err
	}
	in.log.Info("list send queued", "partner", p.cfg.Name, "list", ls.list.Name, "job", ls.res.JobID,
		"considered", ls.res.Considered, "matched", ls.res.Matched, "skipped_by_error", ls.res.SkippedByError,
		"rejected", ls.res.Rejected, "queued", ls.res.Queued)
	return ls.res, nil, nil
}

// check finds the list, the template, the segment and send_at.
func (ls *listSend) check(ctx context.Context) ([]SendProblem, error) {
	var problems []SendProblem
	bad := func(field, value, format string, args ...any) {
		problems = append(problems, SendProblem{Problem: Problem{Field: field, Value: value, Message: fmt.Sprintf(format, args...)}})
	}
	req := ls.req
	if strings.TrimSpace(req.List) == "" {
		bad("list", "", "name the list to send to")
		return problems, nil
	}
	var err error
	if ls.list, err = ls.in.st.ListByName(ctx, ls.p.cfg.Name, req.List); err != nil {
		return nil, err // store.ErrNotFound: another partner's list is not found either
	}
	var stale *templateError
	switch t, err := ls.in.template(ctx, ls.p, req.Template); {
	case req.Template == "":
		bad("template", "", "name the template to send")
	case errors.Is(err, store.ErrNotFound):
		bad("template", req.Template, "there is no template named %q; upload templates/%s.tmpl first", req.Template, req.Template)
	case errors.As(err, &stale):
		bad("template", req.Template, "%v", err)
	case err != nil:
		return nil, err
	default:
		ls.t = t
	}
	if strings.TrimSpace(req.Segment) != "" {
		// One now() for the whole send: the first and the last member of
		// a long list are judged at the same instant (and the clock is
		// not read once per member).
		now := ls.in.now()
		expr, err := segment.Compile(req.Segment, segment.Options{Now: func() time.Time { return now }})
		var se *segment.Error
		switch {
		case errors.As(err, &se):
			problems = append(problems, SendProblem{Problem: Problem{Field: "segment", Value: req.Segment,
				Message: fmt.Sprintf("the segment does not compile at line %d, column %d: %s", se.Line, se.Column, se.Message)},
				Line: se.Line, Column: se.Column})
		case err != nil:
			return nil, err
		default:
			ls.expr = expr
		}
	}
	if req.SendAt != "" {
		at, msg := parseSendAt(req.SendAt, ls.p.loc)
		if msg != "" {
			bad("send_at", req.SendAt, "%s", msg)
		}
		ls.m0.NextAttemptAt = at
	}
	return problems, nil
}

// wantedValues are the attributes whose typed values the segment reads
// (nil: all of them).
func (ls *listSend) wantedValues() map[string]bool {
	if ls.expr == nil {
		return map[string]bool{}
	}
	names, all := segmentNames(ls.req.Segment)
	if all {
		return nil
	}
	return names
}

// wantedTexts are the attributes the template reads as text (nil: all of
// them): none in a dry run, the variables of a template made only of text
// and {{.name}} actions, else every attribute, as a CSV row gives every
// column (a template may read . as a whole), and every attribute too when
// the channel's driver reads the message's variables.
func (ls *listSend) wantedTexts() map[string]bool {
	t := ls.t
	switch {
	case ls.req.DryRun:
		return map[string]bool{}
	case ls.p.keepVars[t.channel] || t.fastBody == nil || (t.subjectSrc != "" && t.fastSubject == nil):
		return nil
	}
	want := map[string]bool{}
	for _, v := range t.vars {
		want[v] = true
	}
	return want
}

// memberKeys are the contact keys each member is read with: those the
// segment reads, those the template reads as text, and in a send the
// channel's recipient and the ref its messages carry.
func (ls *listSend) memberKeys(wantValues, wantTexts map[string]bool) store.MemberKeys {
	var keys store.MemberKeys
	for _, k := range [...]struct {
		name string
		key  store.MemberKeys
	}{{fieldEmail, store.MemberEmail}, {fieldPhone, store.MemberPhone}, {fieldRef, store.MemberRef}} {
		if wantValues == nil || wantValues[k.name] || wantTexts == nil || wantTexts[k.name] {
			keys |= k.key
		}
	}
	if !ls.req.DryRun {
		keys |= store.MemberRef
		if ls.t.recipient == colPhone {
			keys |= store.MemberPhone
		} else {
			keys |= store.MemberEmail
		}
	}
	return keys
}

// memberRange is how many contact ids one read of the list spans: at
// most that many members are read, evaluated and held at once per worker.
const memberRange = 4096

// rangeResult is what a worker made of one range of the list.
type rangeResult struct {
	seq                                    int64
	considered, matched, skipped, rejected int
	firstSkip                              string
	errs                                   []store.ListSendError
	msgs                                   []store.Message
	problem                                *SendProblem
	err                                    error
}

// run splits the span of the list's contact ids into ranges that workers
// (one per CPU, at most four) read, decode, evaluate and render in
// parallel, and queues their messages in contact order: reading and
// evaluating a member cost as much as writing its message, so one
// goroutine doing them was the send's bottleneck. At most a few ranges
// are in flight, so memory stays flat whatever the list's size.
func (ls *listSend) run(ctx context.Context) (*SendProblem, error) {
	lo, hi, err := ls.in.st.MemberRange(ctx, ls.list.ID)
	if err != nil || hi == 0 {
		return nil, err
	}
	ranges := (hi-lo)/memberRange + 1
	workers := min(runtime.GOMAXPROCS(0), 4, int(ranges))
	window := 2 * workers // ranges read but not yet queued
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tokens := make(chan struct{}, window)
	for range window {
		tokens <- struct{}{}
	}
	results := make(chan rangeResult, window)
	ls.spent = make(chan []store.Message, window)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls.work(ctx, lo, ranges, &next, tokens, results)
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	pending := map[int64]rangeResult{}
	var done int64
	for r := range results {
		pending[r.seq] = r
		for {
			r, ok := pending[done]
			if !ok {
				break
			}
			delete(pending, done)
			done++
			if r.err != nil || r.problem != nil {
				return r.problem, r.err
			}
			if err := ls.take(r); err != nil {
				return nil, err
			}
			tokens <- struct{}{}
		}
	}
	if done < ranges && ctx.Err() == nil {
		return nil, fmt.Errorf("list send stopped after %d of %d ranges", done, ranges)
	}
	return nil, ctx.Err()
}

// take adds a range's counts and errors to the send and queues its
// messages.
func (ls *listSend) take(r rangeResult) error {
	ls.res.Considered += r.considered
	ls.res.Matched += r.matched
	ls.res.SkippedByError += r.skipped
	ls.res.Rejected += r.rejected
	if ls.res.FirstSkipError == "" {
		ls.res.FirstSkipError = r.firstSkip
	}
	for _, e := range r.errs {
		if len(ls.res.Errors) < maxListedErrors {
			ls.res.Errors = append(ls.res.Errors, e)
		}
	}
	for i := range r.msgs {
		if err := ls.w.Add(r.msgs[i]); err != nil {
			return fmt.Errorf("cannot queue a message of list %q: %w", ls.list.Name, err)
		}
	}
	ls.res.Queued += len(r.msgs)
	select {
	case ls.spent <- r.msgs[:0]:
	default:
	}
	return nil
}

// worker is one goroutine's state: nothing in it is shared.
type worker struct {
	ls      *listSend
	dec     *attrDecoder
	match   *segment.Matcher // nil: every member
	phones  *phoneNormalizer
	buf     bytes.Buffer
	values  map[string]any
	text    map[string]string
	members []store.ListMember
	r       rangeResult
}

// work takes ranges until there are none left or ctx ends, and sends what
// it made of each to results.
func (ls *listSend) work(ctx context.Context, lo, ranges int64, next *atomic.Int64, tokens chan struct{}, results chan<- rangeResult) {
	wk := &worker{ls: ls, dec: ls.dec.clone(), phones: newPhoneNormalizer(ls.p.cfg.Region), values: map[string]any{}, text: map[string]string{}}
	if ls.expr != nil {
		wk.match = ls.expr.Matcher()
	}
	rd, err := ls.in.st.MemberReader(ls.keys)
	if err != nil {
		select {
		case results <- rangeResult{seq: next.Add(1) - 1, err: err}:
		case <-ctx.Done():
		}
		return
	}
	defer rd.Close()
	for {
		select {
		case <-tokens:
		case <-ctx.Done():
			return
		}
		seq := next.Add(1) - 1
		if seq >= ranges {
			return
		}
		from := lo + seq*memberRange
		wk.r = rangeResult{seq: seq}
		wk.members, wk.r.err = rd.Range(ctx, ls.list.ID, from, from+memberRange-1, wk.members)
		if !ls.req.DryRun && wk.r.err == nil {
			// Sized once: growing a slice of messages by appending copied
			// each of them about twice.
			select {
			case wk.r.msgs = <-ls.spent:
			default:
			}
			if cap(wk.r.msgs) < len(wk.members) {
				wk.r.msgs = make([]store.Message, 0, len(wk.members))
			}
		}
		for i := 0; wk.r.err == nil && wk.r.problem == nil && i < len(wk.members); i++ {
			wk.member(ctx, &wk.members[i])
		}
		select {
		case results <- wk.r:
		case <-ctx.Done():
			return
		}
	}
}

// member evaluates the segment on one member and, when it matches and
// this is no dry run, makes its message.
func (wk *worker) member(ctx context.Context, m *store.ListMember) {
	ls := wk.ls
	wk.r.considered++
	if err := wk.dec.decode(m.Attributes, wk.values, wk.text); err != nil {
		wk.skip(m, fmt.Errorf("the contact's stored attributes cannot be read: %w", err))
		return
	}
	for i, f := range [...]struct{ name, v string }{{fieldEmail, m.Email}, {fieldPhone, m.Phone}, {fieldRef, m.Ref}} {
		if f.v == "" {
			continue
		}
		if ls.fieldValue[i] {
			wk.values[f.name] = f.v
		}
		if ls.fieldText[i] {
			wk.text[f.name] = f.v
		}
	}
	if wk.match != nil {
		ok, err := wk.match.Match(wk.values)
		if err != nil {
			wk.skip(m, err)
			return
		}
		if !ok {
			return
		}
	}
	wk.r.matched++
	if !ls.req.DryRun {
		wk.message(ctx, m)
	}
}

// skip counts a member the segment could not be evaluated on.
func (wk *worker) skip(m *store.ListMember, err error) {
	wk.r.skipped++
	if wk.r.firstSkip == "" {
		wk.r.firstSkip = fmt.Sprintf("contact %d: %v", m.ContactID, err)
	}
}

// reject records a matched member whose message cannot be made.
func (wk *worker) reject(m *store.ListMember, column, value, msg string) {
	wk.r.rejected++
	wk.r.errs = append(wk.r.errs, store.ListSendError{ContactID: m.ContactID, Column: column, Value: value, Error: msg})
}

// message checks and renders one matched member's message as rows.go does
// a CSV row's.
func (wk *worker) message(ctx context.Context, m *store.ListMember) {
	ls := wk.ls
	t := ls.t
	msg := ls.m0
	msg.Partner, msg.Channel, msg.Priority, msg.Ref, msg.Format = ls.p.cfg.Name, t.channel, store.PriorityBulk, m.Ref, "text"
	to := m.Email
	if t.recipient == colPhone {
		to = m.Phone
	}
	if to == "" {
		wk.reject(m, t.recipient, "", fmt.Sprintf("the template %q goes by channel %s, which sends to %s, and this contact has none", t.name, t.channel, recipientNoun(t.recipient)))
		return
	}
	var problem string
	if t.recipient == colPhone {
		msg.Recipient, problem = wk.phones.normalize(to)
	} else {
		msg.Recipient, problem = checkEmail(to)
	}
	if problem != "" {
		wk.reject(m, t.recipient, to, problem)
		return
	}
	missing := false
	for _, v := range t.vars {
		if _, ok := wk.text[v]; !ok {
			wk.reject(m, v, "", fmt.Sprintf("the template %q uses {{.%s}}, and this contact has no attribute %s; give it one (a list drop or the contacts API), or change the template", t.name, v, v))
			missing = true
		}
	}
	if missing {
		return
	}
	subject, body, err := t.renderFor(ctx, &wk.buf, wk.text, msg.Partner, msg.Recipient)
	if err != nil {
		var limit *renderLimitError
		switch {
		case ctx.Err() != nil:
			wk.r.err = ctx.Err()
		case errors.As(err, &limit):
			// The template's bound: every contact would spend it again.
			wk.r.problem = &SendProblem{Problem: Problem{Field: "template", Value: t.name,
				Message: fmt.Sprintf("the template %q cannot be filled in for contact %d: %s; nothing was queued", t.name, m.ContactID, limit.msg)}}
		default:
			wk.reject(m, "", "", fmt.Sprintf("the template %q cannot be filled in for this contact: %s", t.name, renderErrorText(err)))
		}
		return
	}
	msg.Subject, msg.Body, msg.Format, msg.Sender = subject, body, t.format, t.sender
	if ls.p.keepVars[t.channel] {
		msg.Vars = maps.Clone(wk.text)
	}
	wk.r.msgs = append(wk.r.msgs, msg)
}
