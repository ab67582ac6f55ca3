package ingest

import (
	"bytes"
	"context"
)

// A CSV row's variables are its fields: a plain template (text and
// {{.name}} only) is rendered straight from them through a columnPlan,
// and a map of the variables is built only for what needs one (a
// template text/template executes, a channel that stores the variables).
// A wide file (ten variable columns) spent a sixth of its reading time
// filling a map for every row.

// columnPlan is a plain template's parts with each {{.name}} resolved to
// the position of its column in one file.
type columnPlan struct {
	subject, body []columnPart
}

// columnPart is text, the field at col when col ≥ 0, or the recipient's
// unsubscribe link when unsub is set.
type columnPart struct {
	text  string
	col   int
	unsub bool
}

// plan returns t's column plan for this file, or nil when t is not plain
// or names something that is not a variable column (such a name is not
// in the variables map either, and the render goes the map's way).
func (c *columns) plan(t *messageTemplate) *columnPlan {
	p, ok := c.plans[t]
	if !ok {
		p = c.newPlan(t)
		if c.plans == nil {
			c.plans = map[*messageTemplate]*columnPlan{}
		}
		c.plans[t] = p
	}
	return p
}

func (c *columns) newPlan(t *messageTemplate) *columnPlan {
	if t.fastBody == nil {
		return nil
	}
	resolve := func(parts []fastPart) ([]columnPart, bool) {
		out := make([]columnPart, 0, len(parts))
		for _, fp := range parts {
			if fp.unsub {
				out = append(out, columnPart{col: -1, unsub: true})
				continue
			}
			if fp.field == "" {
				out = append(out, columnPart{text: fp.text, col: -1})
				continue
			}
			col := -1
			for _, i := range c.vars {
				if c.names[i] == fp.field {
					col = i
				}
			}
			if col < 0 {
				return nil, false
			}
			out = append(out, columnPart{col: col})
		}
		return out, true
	}
	p := &columnPlan{}
	ok := true
	if t.fastSubject != nil {
		p.subject, ok = resolve(t.fastSubject)
	}
	if ok {
		p.body, ok = resolve(t.fastBody)
	}
	if !ok {
		return nil
	}
	return p
}

// varsMap returns a new map of the row's variables.
func (c *columns) varsMap(fields []string) map[string]string {
	m := make(map[string]string, len(c.vars))
	for _, i := range c.vars {
		m[c.names[i]] = fields[i]
	}
	return m
}

// renderRow renders t for one row of partner to recipient, as
// t.renderFor would with the row's variables map
// (TestRenderRowMatchesRender). vars is that map when the row already has
// one, or nil.
func (fj *fileJob) renderRow(ctx context.Context, cols *columns, t *messageTemplate, fields []string, vars map[string]string, partner, recipient string) (subject, body string, err error) {
	var unsubURL string
	if t.unsubAt != nil && t.links != nil && partner != "" && recipient != "" {
		unsubURL = t.links(partner, recipient)
	}
	// A link that cannot be made goes the long way, which reports why.
	if p := cols.plan(t); p != nil && (t.unsubAt == nil || unsubURL != "") {
		if t.fastSubject != nil {
			subject = joinColumns(&fj.buf, p.subject, fields, unsubURL)
		}
		body = joinColumns(&fj.buf, p.body, fields, unsubURL)
		// The same checks as render's own plain path.
		if len(subject) > t.maxSubject {
			return "", "", t.tooLarge("subject", t.maxSubject)
		}
		if len(body) > t.maxBody {
			return "", "", t.tooLarge("body", t.maxBody)
		}
		return subject, body, nil
	}
	if vars == nil {
		// One map per file, filled again for each row.
		if fj.vars == nil {
			fj.vars = make(map[string]string, len(cols.vars))
		}
		clear(fj.vars)
		for _, i := range cols.vars {
			fj.vars[cols.names[i]] = fields[i]
		}
		vars = fj.vars
	}
	return t.renderFor(ctx, &fj.buf, vars, partner, recipient)
}

// joinColumns is renderFast over a row's fields.
func joinColumns(buf *bytes.Buffer, parts []columnPart, fields []string, unsubURL string) string {
	buf.Reset()
	for _, p := range parts {
		if p.unsub {
			buf.WriteString(unsubURL)
		} else if p.col < 0 {
			buf.WriteString(p.text)
		} else {
			buf.WriteString(fields[p.col])
		}
	}
	return buf.String()
}
