package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// RunIdentityVars are the variables a workflow's message has besides the
// starting event's data: the contact's addresses and the event's key
// (workflow/engine.go, recipient).
var RunIdentityVars = []string{"email", "phone", "ref", "key"}

// TemplateFacts is what check-config learns about a partner's stored
// template: the channel it sends on and the variables it reads.
type TemplateFacts struct {
	Channel string
	Vars    []string
}

// ErrNoTemplate is what a TemplateLookup returns for a template the
// partner has not uploaded.
var ErrNoTemplate = errors.New("no such template")

// TemplateLookup finds a partner's newest template of a name.
type TemplateLookup func(partner, template string) (TemplateFacts, error)

// CheckWorkflowTemplates checks each workflow send step against the
// template it names, as far as that can be known before an event
// arrives: the template exists (else a note: the partner may upload it
// later), sends on the step's channel, and, when the workflow declares
// its data, reads no variable that neither the data nor the contact
// supplies. Errors name the field and line; notes say what could not be
// checked.
func (c *Config) CheckWorkflowTemplates(lookup TemplateLookup) (notes []string, err error) {
	var errs []error
	for i, w := range c.Workflows {
		for j, st := range w.Steps {
			if st.Send == nil {
				continue
			}
			field := fmt.Sprintf("workflow[%d].steps[%d].send.template", i, j)
			bad := func(format string, args ...any) {
				errs = append(errs, &FieldError{Field: field, Line: c.lineOf(field), Msg: fmt.Sprintf(format, args...)})
			}
			facts, lerr := lookup(w.Partner, st.Send.Template)
			switch {
			case errors.Is(lerr, ErrNoTemplate):
				notes = append(notes, fmt.Sprintf("%s: partner %q has not uploaded template %q yet; its runs fail at this step until templates/%s.tmpl arrives",
					field, w.Partner, st.Send.Template, st.Send.Template))
				continue
			case lerr != nil:
				bad("template %q: %v", st.Send.Template, lerr)
				continue
			}
			if st.Send.Channel != "" && facts.Channel != st.Send.Channel {
				bad("template %q sends on %s, not on the step's channel %s", st.Send.Template, facts.Channel, st.Send.Channel)
			}
			var fromEvent []string
			for _, v := range facts.Vars {
				if !slices.Contains(RunIdentityVars, v) {
					fromEvent = append(fromEvent, v)
				}
			}
			if len(w.Data) == 0 {
				if len(fromEvent) > 0 {
					notes = append(notes, fmt.Sprintf("%s: template %q reads %s from the event's data; declare data = [...] on the workflow to have events without them refused",
						field, st.Send.Template, strings.Join(fromEvent, ", ")))
				}
				continue
			}
			for _, v := range fromEvent {
				if !slices.Contains(w.Data, v) {
					bad("template %q reads {{.%s}}, which neither the workflow's data (%s) nor the contact (%s) supplies; add %q to data",
						st.Send.Template, v, strings.Join(w.Data, ", "), strings.Join(RunIdentityVars, ", "), v)
				}
			}
		}
	}
	return notes, errors.Join(errs...)
}
