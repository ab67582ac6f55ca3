package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dropgate/dropgate/segment"
)

// Workflow is one automated workflow: an event of a partner's contact
// starts a run that executes Steps in order, unless an ExitOn event of the
// same contact (and key) cancels it first.
type Workflow struct {
	Name    string `toml:"name"`
	Partner string `toml:"partner"`
	// On is the event name that starts a run.
	On string `toml:"on"`
	// When, if set, is an expression on the event's data that must be
	// true for a run to start.
	When string `toml:"when"`
	// ExitOn are event names that cancel a waiting run of the same
	// contact, and of the same key when both events carry one.
	ExitOn []string `toml:"exit_on"`
	// Reentry is how soon after a run started the same contact may start
	// another: "" while none is waiting, a duration such as "7d", or
	// "never".
	Reentry string `toml:"reentry"`
	// Data names the event data fields every starting event must carry:
	// an event of On without one of them is refused (the API answers 422,
	// an events/ file is rejected with the row and column), and
	// check-config checks that the send steps' templates read nothing
	// else from the event. Empty: no fields are required.
	Data []string `toml:"data"`
	// QuietHours overrides the partner's quiet_hours for this workflow's
	// SMS steps ("21:00-08:00", or "off").
	QuietHours string `toml:"quiet_hours"`
	// Steps run in order.
	Steps []WorkflowStep `toml:"steps"`
}

// WorkflowStep is one step: a delay (Delay or Until) or a send.
type WorkflowStep struct {
	// Delay waits this long: "90s", "1h", "2d".
	Delay string `toml:"delay"`
	// Until waits for the next time of day "HH:MM" in the partner's
	// time zone.
	Until string `toml:"until"`
	// Send queues one message from a stored template.
	Send *WorkflowSend `toml:"send"`
}

// WorkflowSend is a send step: a stored template of the partner, and
// optionally the channel the template must be for.
type WorkflowSend struct {
	Template string `toml:"template"`
	Channel  string `toml:"channel"`
}

// ReentryNever is the Reentry value that lets a contact run a workflow
// only once.
const ReentryNever = "never"

var delayRe = regexp.MustCompile(`^(\d+)d$`)

// ParseDelay reads a step delay or reentry time: a Go duration ("90s",
// "1h30m") or a whole number of days ("2d").
func ParseDelay(s string) (time.Duration, error) {
	if m := delayRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 3650 {
			return 0, fmt.Errorf("%q is too long", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a delay such as \"90s\", \"1h\" or \"2d\"", s)
	}
	return d, nil
}

// ParseClock reads a time of day "HH:MM" as minutes after midnight.
func ParseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day such as \"09:00\"", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// QuietWindow is a daily window, in minutes after midnight, when SMS
// steps do not send; Start > End spans midnight. The zero value is none.
type QuietWindow struct {
	Start, End int
	Set        bool
}

// ParseQuietHours reads "21:00-08:00" ("" or "off": no window).
func ParseQuietHours(s string) (QuietWindow, error) {
	if s == "" || s == "off" {
		return QuietWindow{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return QuietWindow{}, fmt.Errorf("%q is not a window such as \"21:00-08:00\"", s)
	}
	start, err := ParseClock(strings.TrimSpace(a))
	if err != nil {
		return QuietWindow{}, err
	}
	end, err := ParseClock(strings.TrimSpace(b))
	if err != nil {
		return QuietWindow{}, err
	}
	if start == end {
		return QuietWindow{}, fmt.Errorf("%q starts and ends at the same time", s)
	}
	return QuietWindow{Start: start, End: end, Set: true}, nil
}

// aliasStepLines gives each [[workflow.steps]] table's keys, which the
// line scanner numbers across the whole file ("workflow.steps[3]"), the
// path of the field they decoded into ("workflow[1].steps[0]").
func (c *Config) aliasStepLines() {
	g := 0
	for i, w := range c.Workflows {
		for j := range w.Steps {
			from := fmt.Sprintf("workflow.steps[%d]", g)
			if _, ok := c.lines[from]; !ok {
				return // inline steps: the workflow's own line will do
			}
			to := fmt.Sprintf("workflow[%d].steps[%d]", i, j)
			for k, n := range c.lines {
				if k == from || strings.HasPrefix(k, from+".") {
					c.lines[to+strings.TrimPrefix(k, from)] = n
				}
			}
			g++
		}
	}
}

// validateWorkflows checks every [[workflow]].
func (c *Config) validateWorkflows(bad func(field, format string, args ...any)) {
	if c.lines != nil {
		c.aliasStepLines()
	}
	partners := map[string]*Partner{}
	for i := range c.Partners {
		partners[c.Partners[i].Name] = &c.Partners[i]
		if q := c.Partners[i].QuietHours; q != "" {
			if _, err := ParseQuietHours(q); err != nil {
				bad(fmt.Sprintf("partner[%d].quiet_hours", i), "%v", err)
			}
		}
	}
	channels := map[string]bool{}
	for _, ch := range c.Channels {
		channels[ch.Name] = true
	}
	seen := map[string]bool{}
	for i, w := range c.Workflows {
		f := fmt.Sprintf("workflow[%d]", i)
		switch {
		case !nameRe.MatchString(w.Name):
			bad(f+".name", "%q must be lower-case letters, digits, '-' or '_' (at most 64)", w.Name)
		case seen[w.Partner+"/"+w.Name]:
			bad(f+".name", "%q is used twice for partner %q", w.Name, w.Partner)
		}
		seen[w.Partner+"/"+w.Name] = true
		if partners[w.Partner] == nil {
			bad(f+".partner", "%q is not a configured partner", w.Partner)
		}
		if strings.TrimSpace(w.On) == "" {
			bad(f+".on", "name the event that starts a run, e.g. on = \"cart_abandoned\"")
		}
		if w.When != "" {
			if _, err := segment.Compile(w.When, segment.Options{}); err != nil {
				bad(f+".when", "%v", err)
			}
		}
		for j, e := range w.ExitOn {
			if strings.TrimSpace(e) == "" {
				bad(fmt.Sprintf("%s.exit_on[%d]", f, j), "must not be empty")
			}
		}
		fields := map[string]bool{}
		for j, d := range w.Data {
			switch {
			case strings.TrimSpace(d) == "" || d != strings.TrimSpace(d):
				bad(fmt.Sprintf("%s.data[%d]", f, j), "%q is not a data field name", d)
			case fields[d]:
				bad(fmt.Sprintf("%s.data[%d]", f, j), "%q is named twice", d)
			}
			fields[d] = true
		}
		if w.Reentry != "" && w.Reentry != ReentryNever {
			if _, err := ParseDelay(w.Reentry); err != nil {
				bad(f+".reentry", "%v; or \"never\"", err)
			}
		}
		if _, err := ParseQuietHours(w.QuietHours); err != nil {
			bad(f+".quiet_hours", "%v", err)
		}
		if len(w.Steps) == 0 {
			bad(f+".steps", "give at least one step")
		}
		sends := 0
		for j, st := range w.Steps {
			sf := fmt.Sprintf("%s.steps[%d]", f, j)
			kinds := 0
			if st.Delay != "" {
				kinds++
				if _, err := ParseDelay(st.Delay); err != nil {
					bad(sf+".delay", "%v", err)
				}
			}
			if st.Until != "" {
				kinds++
				if _, err := ParseClock(st.Until); err != nil {
					bad(sf+".until", "%v", err)
				}
			}
			if st.Send != nil {
				kinds++
				sends++
				if !templateNameRe.MatchString(st.Send.Template) {
					bad(sf+".send.template", "%q is not a template name", st.Send.Template)
				}
				if ch := st.Send.Channel; ch != "" {
					if !channels[ch] {
						bad(sf+".send.channel", "%q is not a configured channel", ch)
					} else if p := partners[w.Partner]; p != nil && len(p.Channels) > 0 && !contains(p.Channels, ch) {
						bad(sf+".send.channel", "%q is not one of partner %q's channels", ch, w.Partner)
					}
				}
			}
			if kinds != 1 {
				bad(sf, "a step is exactly one of delay, until or send")
			}
		}
		if len(w.Steps) > 0 && sends == 0 {
			bad(f+".steps", "a workflow without a send step sends nothing")
		}
	}
}

var templateNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
