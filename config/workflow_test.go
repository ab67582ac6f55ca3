package config

import (
	"strings"
	"testing"
)

const workflowBase = `data_dir = "/tmp/x"
[admin]
listen = "127.0.0.1:0"
[[partner]]
name = "acme"
channels = ["email", "sms"]
quiet_hours = "21:00-08:00"
`

func TestValidateAcceptsTheCartWorkflow(t *testing.T) {
	cfg, err := Parse(strings.NewReader(workflowBase+`
[[workflow]]
name = "cart"
partner = "acme"
on = "cart_abandoned"
when = "total > 20"
exit_on = ["order_placed"]
reentry = "7d"
quiet_hours = "22:00-07:30"

[[workflow.steps]]
delay = "1h"

[[workflow.steps]]
send = { template = "reminder", channel = "email" }

[[workflow.steps]]
until = "09:00"

[[workflow.steps]]
send = { template = "reminder-sms", channel = "sms" }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := cfg.Workflows[0]; len(w.Steps) != 4 || w.Steps[1].Send.Template != "reminder" || w.Steps[2].Until != "09:00" {
		t.Fatalf("decoded %+v", w)
	}
}

func TestValidateNamesWorkflowFieldsAndLines(t *testing.T) {
	cfg, err := Parse(strings.NewReader(workflowBase+`
[[workflow]]
name = "cart"
partner = "nobody"
on = ""
when = "total >"
reentry = "soon"
quiet_hours = "21:00"

[[workflow.steps]]
delay = "1 hour"

[[workflow.steps]]
until = "25:00"

[[workflow.steps]]
send = { template = "reminder", channel = "fax" }

[[workflow.steps]]
delay = "1h"
until = "09:00"
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`line 11: workflow[0].partner: "nobody" is not a configured partner`,
		`line 12: workflow[0].on: name the event`,
		`line 13: workflow[0].when: line 1, column`,
		`line 14: workflow[0].reentry: "soon" is not a delay`,
		`line 15: workflow[0].quiet_hours: "21:00" is not a window`,
		`line 18: workflow[0].steps[0].delay: "1 hour" is not a delay`,
		`line 21: workflow[0].steps[1].until: "25:00" is not a time of day`,
		`line 24: workflow[0].steps[2].send.channel: "fax" is not a configured channel`,
		`line 26: workflow[0].steps[3]: a step is exactly one of delay, until or send`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
