package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Workflows may declare the event data their templates read
// ([[workflow]] data): an event that would start such a workflow without
// one of those fields is refused here, where its other fields are checked,
// instead of failing its run at the send step hours later.

// requiredData maps partner + "\x00" + event name to what the workflows
// that event starts require.
type requiredData map[string][]workflowData

type workflowData struct {
	workflow string
	fields   []string
}

func newRequiredData(cfg *config.Config) requiredData {
	req := requiredData{}
	for _, w := range cfg.Workflows {
		if len(w.Data) > 0 {
			k := w.Partner + "\x00" + strings.TrimSpace(w.On)
			req[k] = append(req[k], workflowData{workflow: w.Name, fields: w.Data})
		}
	}
	return req
}

// check reports each required field the event's data lacks (or holds
// empty), under the field's own name: the column of an events/ file.
func (r requiredData) check(e *store.Event, fail func(column, value, msg string)) {
	for _, w := range r[e.Partner+"\x00"+e.Name] {
		for _, f := range w.fields {
			if strings.TrimSpace(e.Data[f]) == "" {
				fail(f, "", fmt.Sprintf("workflow %s needs the data field %q on every %s event (its templates read it)", w.workflow, f, e.Name))
			}
		}
	}
}

// TemplateFacts parses a partner's stored template source as a send would,
// for check-config: the channel it sends on and the variables it reads.
func TemplateFacts(cfg *config.Config, partnerName string, t store.Template) (config.TemplateFacts, error) {
	pc, ok := cfg.Partner(partnerName)
	if !ok {
		return config.TemplateFacts{}, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	var channels []config.Channel
	for _, name := range pc.WithDefaults().Channels {
		if ch, ok := cfg.Channel(name); ok {
			channels = append(channels, *ch)
		}
	}
	mt, err := parseTemplate(t.Name, t.Source, channels)
	if err != nil {
		var te *templateError
		if errors.As(err, &te) {
			return config.TemplateFacts{}, fmt.Errorf("version %d no longer fits the configuration: %w", t.Version, err)
		}
		return config.TemplateFacts{}, err
	}
	return config.TemplateFacts{Channel: mt.channel, Vars: mt.vars}, nil
}
