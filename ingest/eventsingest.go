package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/dropgate/dropgate/store"
)

// Workflow events (issue #11) come through POST /api/v1/events and as
// events/*.csv drops. Both are checked here, the same way: the contact's
// email and phone exactly as a recipient row's (phones to E.164 with the
// partner's region, addresses lower-cased so that an exit event matches
// its run whatever its spelling), occurred_at as a send_at cell.

// Event columns of an events/ file; every other column is a data field.
const (
	colEvent      = "event"
	colEventID    = "id"
	colKey        = "key"
	colOccurredAt = "occurred_at"
)

// maxEventField bounds an event's name, id, key and ref.
const maxEventField = 255

// EventInput is one event as given in an API request or a file row.
type EventInput struct {
	ID, Event, Email, Phone, Ref, Key, OccurredAt string
	Data                                          map[string]string
}

// eventChecker checks the events of one partner.
type eventChecker struct {
	p        *partner
	phones   *phoneNormalizer
	required requiredData
}

// check turns one input into an event, or reports problems (column, value,
// message) and returns false.
func (ec *eventChecker) check(in EventInput, source string, bad func(column, value, msg string)) (store.Event, bool) {
	ok := true
	fail := func(column, value, msg string) {
		bad(column, value, msg)
		ok = false
	}
	e := store.Event{Partner: ec.p.cfg.Name, EventID: strings.TrimSpace(in.ID), Name: strings.TrimSpace(in.Event),
		Ref: strings.TrimSpace(in.Ref), Key: strings.TrimSpace(in.Key), Data: in.Data, Source: source}
	if e.Name == "" {
		fail(colEvent, in.Event, "the event name is empty; name what happened, e.g. cart_abandoned")
	}
	for _, f := range []struct{ col, v string }{{colEvent, e.Name}, {colEventID, e.EventID}, {colKey, e.Key}, {colRef, e.Ref}} {
		if len(f.v) > maxEventField {
			fail(f.col, "", fmt.Sprintf("the value is longer than %d bytes", maxEventField))
		}
	}
	if email := strings.TrimSpace(in.Email); email != "" {
		if addr, msg := checkEmail(email); msg != "" {
			fail(colEmail, in.Email, msg)
		} else {
			e.Email = strings.ToLower(addr)
		}
	}
	if phone := strings.TrimSpace(in.Phone); phone != "" {
		if num, msg := ec.phones.normalize(phone); msg != "" {
			fail(colPhone, in.Phone, msg)
		} else {
			e.Phone = num
		}
	}
	if strings.TrimSpace(in.Email) == "" && strings.TrimSpace(in.Phone) == "" && e.Ref == "" {
		fail(colEmail, "", "the event names no contact; give its email, phone or ref")
	}
	if s := strings.TrimSpace(in.OccurredAt); s != "" {
		at, msg := parseSendAt(s, ec.p.loc)
		if msg != "" {
			fail(colOccurredAt, in.OccurredAt, msg)
		}
		e.OccurredAt = at
	}
	if e.Name != "" {
		ec.required.check(&e, fail)
	}
	return e, ok
}

// CheckEvents checks API events of a partner as rows of an events/ file
// are checked. It returns the events to accept, or every problem (Field
// "events[i].email"); nothing is accepted when one event is bad.
func (in *Ingester) CheckEvents(partnerName string, inputs []EventInput) ([]store.Event, []Problem, error) {
	p := in.partners[partnerName]
	if p == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	ec := &eventChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region), required: in.required}
	out := make([]store.Event, 0, len(inputs))
	var problems []Problem
	for i, x := range inputs {
		e, ok := ec.check(x, store.EventFromAPI, func(column, value, msg string) {
			problems = append(problems, Problem{Field: fmt.Sprintf("events[%d].%s", i, apiEventField(column)), Value: value, Message: msg})
		})
		if ok {
			out = append(out, e)
		}
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	return out, nil, nil
}

// TemplateChannel returns the channel a partner's stored template sends
// on and the recipient field that channel addresses ("email" or "phone"),
// so a workflow step knows which of its contact's addresses to use and
// whether quiet hours apply before it renders.
func (in *Ingester) TemplateChannel(ctx context.Context, partnerName, name string) (channel, recipientField string, err error) {
	p := in.partners[partnerName]
	if p == nil {
		return "", "", fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	t, err := in.template(ctx, p, name)
	if err != nil {
		return "", "", err
	}
	return t.channel, t.recipient, nil
}

// SetEvents gives the ingester the workflow engine's AcceptFile, which
// stores the events of an events/ file with the runs they start and marks
// the file read, in one transaction. Call it before Run.
func (in *Ingester) SetEvents(accept func(ctx context.Context, fileID int64, rows int, events []store.Event) ([]store.EventResult, error)) {
	in.events = accept
}

// apiEventField names an event's column as the API's JSON does: the data
// fields are under "data".
func apiEventField(column string) string {
	switch column {
	case colEvent, colEventID, colKey, colOccurredAt, colEmail, colPhone, colRef:
		return column
	}
	return "data." + column
}
