package workflow

import (
	"fmt"
	"time"

	"github.com/dropgate/dropgate/config"
)

// flow is one configured workflow, its times parsed once.
type flow struct {
	cfg     config.Workflow
	loc     *time.Location
	quiet   config.QuietWindow
	reentry time.Duration // 0: when none waits; <0: never again
	steps   []step
}

// step is one parsed step: a delay (a duration, or a time of day) or a
// send.
type step struct {
	delay    time.Duration
	until    int // minutes after midnight, -1 for none
	template string
	channel  string
}

func (s step) isSend() bool { return s.template != "" }

// newFlow parses a validated workflow of partner p.
func newFlow(w config.Workflow, p config.Partner) (*flow, error) {
	p = p.WithDefaults()
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return nil, fmt.Errorf("workflow %s: %w", w.Name, err)
	}
	f := &flow{cfg: w, loc: loc}
	quiet := p.QuietHours
	if w.QuietHours != "" {
		quiet = w.QuietHours
	}
	if f.quiet, err = config.ParseQuietHours(quiet); err != nil {
		return nil, fmt.Errorf("workflow %s: quiet_hours: %w", w.Name, err)
	}
	switch w.Reentry {
	case "":
	case config.ReentryNever:
		f.reentry = -1
	default:
		if f.reentry, err = config.ParseDelay(w.Reentry); err != nil {
			return nil, fmt.Errorf("workflow %s: reentry: %w", w.Name, err)
		}
	}
	for i, s := range w.Steps {
		st := step{until: -1}
		switch {
		case s.Delay != "":
			st.delay, err = config.ParseDelay(s.Delay)
		case s.Until != "":
			st.until, err = config.ParseClock(s.Until)
		case s.Send != nil:
			st.template, st.channel = s.Send.Template, s.Send.Channel
		}
		if err != nil {
			return nil, fmt.Errorf("workflow %s: step %d: %w", w.Name, i, err)
		}
		f.steps = append(f.steps, st)
	}
	return f, nil
}

// after returns when a delay step that starts at t ends.
func (f *flow) after(s step, t time.Time) time.Time {
	if s.until < 0 {
		return t.Add(s.delay)
	}
	local := t.In(f.loc)
	at := time.Date(local.Year(), local.Month(), local.Day(), s.until/60, s.until%60, 0, 0, f.loc)
	if !at.After(t) {
		at = time.Date(local.Year(), local.Month(), local.Day()+1, s.until/60, s.until%60, 0, 0, f.loc)
	}
	return at
}

// quietUntil reports whether t falls in the flow's quiet hours and, if so,
// when they end.
func (f *flow) quietUntil(t time.Time) (time.Time, bool) {
	q := f.quiet
	if !q.Set {
		return time.Time{}, false
	}
	local := t.In(f.loc)
	m := local.Hour()*60 + local.Minute()
	endOn := func(days int) time.Time {
		return time.Date(local.Year(), local.Month(), local.Day()+days, q.End/60, q.End%60, 0, 0, f.loc)
	}
	switch {
	case q.Start < q.End && m >= q.Start && m < q.End:
		return endOn(0), true
	case q.Start > q.End && m >= q.Start:
		return endOn(1), true
	case q.Start > q.End && m < q.End:
		return endOn(0), true
	}
	return time.Time{}, false
}

// first returns the step a new run waits at and when: leading delays are
// counted from now at once, so a run starts straight into its wait.
func (f *flow) first(now time.Time) (int, time.Time) {
	i, due := 0, now
	for i < len(f.steps) && !f.steps[i].isSend() {
		due = f.after(f.steps[i], due)
		i++
	}
	return i, due
}
