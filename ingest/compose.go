package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dropgate/dropgate/store"
)

// MaxAPIRecipients bounds one API send request: larger sends belong in a
// file (or a list), which streams instead of being held in memory.
const MaxAPIRecipients = 1000

// APISend is one send request of the admin API, before any check: a stored
// template of the partner, or a literal body on a channel, to one or more
// recipients.
type APISend struct {
	Template string
	// Channel, Subject and Body make a literal message when Template is
	// empty; Channel defaults to the partner's first channel.
	Channel, Subject, Body string
	// SendAt is RFC 3339 or "YYYY-MM-DD HH:MM" in the partner's time zone,
	// as in a CSV's send_at column; "" sends now.
	SendAt     string
	Recipients []APIRecipient
}

// APIRecipient is one addressee and the variables its message is rendered
// with.
type APIRecipient struct {
	To   string
	Ref  string
	Vars map[string]string
}

// Problem is one thing wrong with an API send request: Field is the JSON
// field ("recipients[2].to", "template"), Value what was given.
type Problem struct {
	Field   string `json:"field"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

// ErrUnknownPartner is returned by Compose for a partner not in the config.
var ErrUnknownPartner = errors.New("unknown partner")

// Compose checks and renders an API send exactly as ingest checks and
// renders a CSV row of the same partner: the recipient must suit the
// channel (phones normalised to E.164 with the partner's region), every
// variable the template uses must be given, and the render must succeed.
// It returns the messages ready to store, or every problem found (nothing
// is sent when one recipient is bad, like a file under reject_file).
func (in *Ingester) Compose(ctx context.Context, partnerName string, req APISend) ([]store.Message, []Problem, error) {
	var used store.TemplateRef
	return in.compose(ctx, partnerName, req, &used)
}

// Composed is an API send checked and rendered by ComposeJob: its messages
// and the template version they were rendered from (none for a literal
// body), which the job records.
type Composed struct {
	Msgs      []store.Message
	Templates []store.TemplateRef
}

// ComposeJob is Compose, also telling which template version rendered the
// messages.
func (in *Ingester) ComposeJob(ctx context.Context, partnerName string, req APISend) (Composed, []Problem, error) {
	var used store.TemplateRef
	msgs, problems, err := in.compose(ctx, partnerName, req, &used)
	c := Composed{Msgs: msgs}
	if used.Name != "" {
		c.Templates = []store.TemplateRef{used}
	}
	return c, problems, err
}

// compose is Compose; it sets *used to the template version it renders.
func (in *Ingester) compose(ctx context.Context, partnerName string, req APISend, used *store.TemplateRef) ([]store.Message, []Problem, error) {
	p := in.partners[partnerName]
	if p == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	var problems []Problem
	bad := func(field, value, format string, args ...any) {
		problems = append(problems, Problem{Field: field, Value: value, Message: fmt.Sprintf(format, args...)})
	}
	switch n := len(req.Recipients); {
	case n == 0:
		bad("recipients", "", "name at least one recipient")
	case n > MaxAPIRecipients:
		bad("recipients", "", "%d recipients; at most %d per request (drop a file for larger sends)", n, MaxAPIRecipients)
	}

	var t *messageTemplate
	channel, recipientField := "", ""
	switch {
	case req.Template != "":
		if req.Body != "" || req.Subject != "" || req.Channel != "" {
			bad("template", req.Template, "give either a template, or a body (with channel and subject); not both")
		}
		var err error
		var stale *templateError // a stored version the config no longer fits
		t, err = in.template(ctx, p, req.Template)
		switch {
		case errors.Is(err, store.ErrNotFound):
			bad("template", req.Template, "there is no template named %q; upload templates/%s.tmpl first", req.Template, req.Template)
		case errors.As(err, &stale):
			bad("template", req.Template, "%v", err)
		case err != nil:
			return nil, nil, err
		default:
			channel, recipientField = t.channel, t.recipient
			*used = store.TemplateRef{Name: t.name, Version: t.version}
		}
	case strings.TrimSpace(req.Body) != "":
		ch := p.channels[0]
		if req.Channel != "" {
			c := findChannel(p.channels, req.Channel)
			if c == nil {
				bad("channel", req.Channel, "channel %q is not one of the partner's channels (%s)", req.Channel, channelNames(p.channels))
				return nil, problems, nil
			}
			ch = *c
		}
		channel, recipientField = ch.Name, ch.RecipientField()
	default:
		bad("template", "", "give a template, or a body to send as it is")
	}
	var m0 store.Message
	if req.SendAt != "" {
		at, msg := parseSendAt(req.SendAt, p.loc)
		if msg != "" {
			bad("send_at", req.SendAt, "%s", msg)
		}
		m0.NextAttemptAt = at
	}
	if channel == "" || len(req.Recipients) > MaxAPIRecipients {
		return nil, problems, nil
	}

	phones := apiPhones(p.cfg.Region) // composephones.go
	defer releaseAPIPhones(phones)
	var buf bytes.Buffer
	msgs := make([]store.Message, 0, len(req.Recipients))
	for i, r := range req.Recipients {
		field := fmt.Sprintf("recipients[%d]", i)
		m := m0
		m.Partner, m.Channel, m.Ref, m.Vars, m.Format = p.cfg.Name, channel, r.Ref, r.Vars, "text"
		var msg string
		if recipientField == colPhone {
			m.Recipient, msg = phones.normalize(r.To)
		} else {
			m.Recipient, msg = checkEmail(r.To)
		}
		if msg != "" {
			bad(field+".to", r.To, "%s", msg)
		}
		if t == nil {
			m.Subject, m.Body = req.Subject, req.Body
			msgs = append(msgs, m)
			continue
		}
		missing := false
		for _, v := range t.vars {
			if _, ok := r.Vars[v]; !ok {
				bad(field+".vars."+v, "", "the template %q uses {{.%s}}; give it in vars", t.name, v)
				missing = true
			}
		}
		if missing {
			continue
		}
		vars := r.Vars
		if vars == nil {
			vars = map[string]string{}
		}
		subject, body, err := t.renderFor(ctx, &buf, vars, m.Partner, m.Recipient)
		var limit *renderLimitError
		switch {
		case err == nil:
		case errors.As(err, &limit):
			// The template's bound, not this recipient's fault: rendering
			// the others would only spend the same again.
			bad(field, "", "the template %q cannot be filled in: %s", t.name, limit.msg)
			return nil, problems, nil
		case ctx.Err() != nil:
			return nil, nil, err
		default:
			bad(field, "", "the template %q cannot be filled in: %s", t.name, renderErrorText(err))
			continue
		}
		m.Subject, m.Body, m.Format, m.Sender = subject, body, t.format, t.sender
		msgs = append(msgs, m)
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	return msgs, nil, nil
}
