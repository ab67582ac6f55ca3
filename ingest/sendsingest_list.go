package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

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

// memberPage is how many members one read of the list returns.
const memberPage = 4096

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
	in     *Ingester
	p      *partner
	req    ListSendRequest
	list   store.List
	t      *messageTemplate
	expr   *segment.Expr // nil: every member
	m0     store.Message
	dec    *attrDecoder
	phones *phoneNormalizer
	buf    bytes.Buffer
	values map[string]any
	text   map[string]string
	res    ListSendResult
	w      *store.JobWriter
}

// sendToList is SendToList for a checked partner; fileID and name are
// the job's file (a sends/ drop) and the name it is shown under.
func (in *Ingester) sendToList(ctx context.Context, p *partner, req ListSendRequest, fileID int64, name string) (ListSendResult, []SendProblem, error) {
	ls := &listSend{in: in, p: p, req: req, values: map[string]any{}, text: map[string]string{}}
	ls.res.DryRun = req.DryRun
	if problems, err := ls.check(ctx); err != nil || len(problems) > 0 {
		return ListSendResult{}, problems, err
	}
	fields, err := in.st.ContactFields(ctx, p.cfg.Name)
	if err != nil {
		return ListSendResult{}, nil, err
	}
	ls.dec = newAttrDecoder(fields)
	ls.phones = newPhoneNormalizer(p.cfg.Region)
	if !req.DryRun {
		if ls.w, err = in.st.BeginListJob(ctx, p.cfg.Name, fileID, name, in.cfg.Ingest.BatchSize); err != nil {
			return ListSendResult{}, nil, err
		}
		// Abort does nothing once committed; on every other way out it
		// removes the job, so nothing half-made is ever sent.
		defer ls.w.Abort(context.WithoutCancel(ctx))
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
		expr, err := segment.Compile(req.Segment, segment.Options{Now: ls.in.now})
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

// page is a page of members read ahead of the one being evaluated.
type page struct {
	members []store.ListMember
	err     error
}

// run reads the list page by page, a page ahead of the evaluation, and
// evaluates, renders and queues each member.
func (ls *listSend) run(ctx context.Context) (*SendProblem, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan page, 1)
	free := make(chan []store.ListMember, 2)
	go ls.read(ctx, pages, free)
	for pg := range pages {
		if pg.err != nil {
			return nil, pg.err
		}
		for i := range pg.members {
			if problem, err := ls.member(ctx, &pg.members[i]); err != nil || problem != nil {
				return problem, err
			}
		}
		select {
		case free <- pg.members:
		default:
		}
	}
	return nil, ctx.Err()
}

// read sends the list's subscribed members to pages, a page at a time in
// contact order, and closes it.
func (ls *listSend) read(ctx context.Context, pages chan<- page, free chan []store.ListMember) {
	defer close(pages)
	var after int64
	for ctx.Err() == nil {
		var buf []store.ListMember
		select {
		case buf = <-free:
		default:
		}
		members, err := ls.in.st.SubscribedMembers(ctx, ls.list.ID, after, memberPage, buf)
		if err != nil || len(members) > 0 {
			select {
			case pages <- page{members: members, err: err}:
			case <-ctx.Done():
				return
			}
		}
		if err != nil || len(members) < memberPage {
			return
		}
		after = members[len(members)-1].ContactID
	}
}

// member evaluates the segment on one member and, when it matches and
// this is no dry run, makes and queues its message.
func (ls *listSend) member(ctx context.Context, m *store.ListMember) (*SendProblem, error) {
	ls.res.Considered++
	if err := ls.dec.decode(m.Attributes, ls.values, ls.text); err != nil {
		ls.skip(m, fmt.Errorf("the contact's stored attributes cannot be read: %w", err))
		return nil, nil
	}
	for _, f := range [...]struct{ name, v string }{{fieldEmail, m.Email}, {fieldPhone, m.Phone}, {fieldRef, m.Ref}} {
		if f.v != "" {
			ls.values[f.name], ls.text[f.name] = f.v, f.v
		} else {
			delete(ls.values, f.name)
			delete(ls.text, f.name)
		}
	}
	if ls.expr != nil {
		ok, err := ls.expr.Match(ls.values)
		if err != nil {
			ls.skip(m, err)
			return nil, nil
		}
		if !ok {
			return nil, nil
		}
	}
	ls.res.Matched++
	if ls.req.DryRun {
		return nil, nil
	}
	return ls.message(ctx, m)
}

// skip counts a member the segment could not be evaluated on.
func (ls *listSend) skip(m *store.ListMember, err error) {
	ls.res.SkippedByError++
	if ls.res.FirstSkipError == "" {
		ls.res.FirstSkipError = fmt.Sprintf("contact %d: %v", m.ContactID, err)
	}
}

// reject records a matched member whose message cannot be made.
func (ls *listSend) reject(m *store.ListMember, column, value, msg string) {
	ls.res.Rejected++
	if len(ls.res.Errors) < maxListedErrors {
		ls.res.Errors = append(ls.res.Errors, store.ListSendError{ContactID: m.ContactID, Column: column, Value: value, Error: msg})
	}
}

// message checks and renders one matched member's message as rows.go does
// a CSV row's, and queues it.
func (ls *listSend) message(ctx context.Context, m *store.ListMember) (*SendProblem, error) {
	t := ls.t
	msg := ls.m0
	msg.Partner, msg.Channel, msg.Priority, msg.Ref, msg.Format = ls.p.cfg.Name, t.channel, store.PriorityBulk, m.Ref, "text"
	to := m.Email
	if t.recipient == colPhone {
		to = m.Phone
	}
	if to == "" {
		ls.reject(m, t.recipient, "", fmt.Sprintf("the template %q goes by channel %s, which sends to %s, and this contact has none", t.name, t.channel, recipientNoun(t.recipient)))
		return nil, nil
	}
	var problem string
	if t.recipient == colPhone {
		msg.Recipient, problem = ls.phones.normalize(to)
	} else {
		msg.Recipient, problem = checkEmail(to)
	}
	if problem != "" {
		ls.reject(m, t.recipient, to, problem)
		return nil, nil
	}
	missing := false
	for _, v := range t.vars {
		if _, ok := ls.text[v]; !ok {
			ls.reject(m, v, "", fmt.Sprintf("the template %q uses {{.%s}}, and this contact has no attribute %s; give it one (a list drop or the contacts API), or change the template", t.name, v, v))
			missing = true
		}
	}
	if missing {
		return nil, nil
	}
	subject, body, err := t.render(ctx, &ls.buf, ls.text)
	if err != nil {
		var limit *renderLimitError
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &limit):
			// The template's bound: every contact would spend it again.
			return &SendProblem{Problem: Problem{Field: "template", Value: t.name,
				Message: fmt.Sprintf("the template %q cannot be filled in for contact %d: %s; nothing was queued", t.name, m.ContactID, limit.msg)}}, nil
		}
		ls.reject(m, "", "", fmt.Sprintf("the template %q cannot be filled in for this contact: %s", t.name, renderErrorText(err)))
		return nil, nil
	}
	msg.Subject, msg.Body, msg.Format, msg.Sender = subject, body, t.format, t.sender
	if ls.p.keepVars[t.channel] {
		msg.Vars = maps.Clone(ls.text)
	}
	if err := ls.w.Add(msg); err != nil {
		return nil, fmt.Errorf("cannot queue the message of contact %d: %w", m.ContactID, err)
	}
	ls.res.Queued++
	return nil, nil
}
