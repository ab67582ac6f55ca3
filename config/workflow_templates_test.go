package config

import (
	"errors"
	"strings"
	"testing"
)

const dataWorkflow = `
[[workflow]]
name = "cart"
partner = "acme"
on = "cart_abandoned"
data = ["cart_id", "total"]

[[workflow.steps]]
delay = "1h"

[[workflow.steps]]
send = { template = "reminder", channel = "email" }
`

func parseWorkflow(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse(strings.NewReader(workflowBase+src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCheckWorkflowTemplatesRefusesAVariableNoEventSupplies(t *testing.T) {
	cfg := parseWorkflow(t, dataWorkflow)
	lookup := func(partner, name string) (TemplateFacts, error) {
		if partner != "acme" || name != "reminder" {
			t.Fatalf("looked up %s/%s", partner, name)
		}
		return TemplateFacts{Channel: "email", Vars: []string{"email", "cart_id", "coupon", "total"}}, nil
	}
	notes, err := cfg.CheckWorkflowTemplates(lookup)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "workflow[0].steps[1].send.template" || fe.Line != 19 || !strings.Contains(fe.Msg, "{{.coupon}}") {
		t.Fatalf("err = %v (%#v), want coupon refused at workflow[0].steps[1].send.template, line 20", err, fe)
	}
	if strings.Contains(err.Error(), "cart_id") && !strings.Contains(err.Error(), "data (cart_id, total)") {
		t.Errorf("a declared field was refused: %v", err)
	}
	if len(notes) != 0 {
		t.Errorf("notes = %q", notes)
	}
}

func TestCheckWorkflowTemplatesAcceptsDeclaredDataAndTheContact(t *testing.T) {
	cfg := parseWorkflow(t, dataWorkflow)
	notes, err := cfg.CheckWorkflowTemplates(func(string, string) (TemplateFacts, error) {
		return TemplateFacts{Channel: "email", Vars: []string{"email", "ref", "key", "cart_id", "total"}}, nil
	})
	if err != nil || len(notes) != 0 {
		t.Fatalf("notes %q, err %v; want neither", notes, err)
	}
}

func TestCheckWorkflowTemplatesRefusesAChannelMismatchAndNotesWhatItCannotKnow(t *testing.T) {
	cfg := parseWorkflow(t, strings.Replace(dataWorkflow, `data = ["cart_id", "total"]`, "", 1))
	_, err := cfg.CheckWorkflowTemplates(func(string, string) (TemplateFacts, error) {
		return TemplateFacts{Channel: "sms", Vars: nil}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "sends on sms, not on the step's channel email") {
		t.Fatalf("err = %v, want a channel mismatch", err)
	}
	notes, err := cfg.CheckWorkflowTemplates(func(string, string) (TemplateFacts, error) {
		return TemplateFacts{Channel: "email", Vars: []string{"cart_id"}}, nil
	})
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "reads cart_id from the event's data") {
		t.Fatalf("notes %q, err %v; want a note that cart_id is read from undeclared data", notes, err)
	}
	notes, err = cfg.CheckWorkflowTemplates(func(string, string) (TemplateFacts, error) { return TemplateFacts{}, ErrNoTemplate })
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "has not uploaded template \"reminder\"") {
		t.Fatalf("notes %q, err %v; want a note about the missing template", notes, err)
	}
}

func TestValidateRefusesBlankAndRepeatedDataFields(t *testing.T) {
	cfg, err := Parse(strings.NewReader(workflowBase+strings.Replace(dataWorkflow, `["cart_id", "total"]`, `["cart_id", "", "cart_id"]`, 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "workflow[0].data[1]") || !strings.Contains(err.Error(), "workflow[0].data[2]: \"cart_id\" is named twice") {
		t.Fatalf("Validate = %v", err)
	}
}
