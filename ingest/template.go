package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/internal/fasttmpl"
)

// messageTemplate is one parsed, checked version of a partner's template,
// ready to render rows. It is immutable once parsed, so files being ingested
// and API sends may share it: each render takes an instance of its own (see
// instance).
type messageTemplate struct {
	name      string
	version   int
	channel   string
	recipient string // the column that addresses the channel: email or phone
	format    string // text | html
	sender    string
	// vars are the row columns the template reads, in first-use order.
	vars []string
	// fastSubject and fastBody render a text template that is only text
	// and {{.name}} actions by concatenation; nil when it is not one.
	fastSubject, fastBody []fastPart

	// What a render may make and do: the channel's limits and the budget.
	maxSubject, maxBody int
	budget              renderBudget
	// subjectSrc and bodySrc make new instances.
	subjectSrc, bodySrc string
	// unsubAt is where the template first places {{unsubscribe_url}}
	// (nil: it does not), and links makes the link for a partner and a
	// recipient (set by bindLinks; nil without [admin] public_url).
	unsubAt *templateError
	links   func(partner, recipient string) string
	// instances holds idle instances for the next renders.
	instances chan *tmplInstance
}

// tmplInstance is the template compiled with functions bound to a guard of
// its own. text/template calls functions without any per-call context, so
// per-render state can only live in the functions' closures: one instance
// serves one render at a time, and concurrent renders (API sends) take
// different instances.
type tmplInstance struct {
	g       *guard
	subject *template.Template // nil when the template has no subject
	body    executor
	out     limitedBuffer
}

// idleInstances bounds the instances kept per template: about the number
// of renders that run at once (ingest workers and API requests).
const idleInstances = 16

// fastPart is a piece of a plain text template: literal text, the
// variable named by field when field is not "", or the unsubscribe link
// when unsub is set.
type fastPart struct {
	text, field string
	unsub       bool
}

// executor is what text/template and html/template templates share.
type executor interface {
	Execute(w io.Writer, data any) error
}

// templateError is a problem in an uploaded template, with the line and
// column in the .tmpl file where it is (both 1-based).
type templateError struct {
	Line, Col int
	Msg       string
}

func (e *templateError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// templateHeaderKeys are the keys allowed before the --- line.
var templateHeaderKeys = []string{"channel", "subject", "format", "from"}

// parseTemplate reads a template file: "key: value" header lines, a line
// holding only ---, then the body. channels are the partner's channels; the
// first is the default when the header names none.
func parseTemplate(name, src string, channels []config.Channel) (*messageTemplate, error) {
	return parseTemplateBudget(name, src, channels, defaultRenderBudget)
}

// parseTemplateBudget is parseTemplate with the render budget of the
// configuration.
func parseTemplateBudget(name, src string, channels []config.Channel, budget renderBudget) (*messageTemplate, error) {
	if len(channels) == 0 {
		return nil, &templateError{Line: 1, Col: 1, Msg: "the partner has no channels configured; ask the administrator"}
	}
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.TrimPrefix(src, "\ufeff")
	t := &messageTemplate{name: name, format: "text"}
	header := map[string]bool{}
	var subjectSrc string
	subjectLine, subjectCol := 0, 0
	lines := strings.SplitAfter(src, "\n")
	bodyStart := -1 // index of the first body line
	for i, raw := range lines {
		lineNo := i + 1
		line := strings.TrimRight(raw, "\n")
		trimmed := strings.TrimSpace(line)
		if trimmed == "---" {
			bodyStart = i + 1
			break
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, &templateError{Line: lineNo, Col: 1, Msg: fmt.Sprintf("%q is not a \"key: value\" header line; the header ends with a line holding only ---", trimmed)}
		}
		keyCol := len(key) - len(strings.TrimLeft(key, " \t")) + 1
		key = strings.ToLower(strings.TrimSpace(key))
		valueCol := strings.Index(line, ":") + 1 + (len(value) - len(strings.TrimLeft(value, " \t"))) + 1
		value = strings.TrimSpace(value)
		if !contains(templateHeaderKeys, key) {
			return nil, &templateError{Line: lineNo, Col: keyCol, Msg: fmt.Sprintf("unknown header %q; use channel, subject, format or from", key)}
		}
		if header[key] {
			return nil, &templateError{Line: lineNo, Col: keyCol, Msg: fmt.Sprintf("header %q appears twice", key)}
		}
		header[key] = true
		switch key {
		case "channel":
			t.channel = stripComment(value)
			if findChannel(channels, t.channel) == nil {
				return nil, &templateError{Line: lineNo, Col: valueCol, Msg: fmt.Sprintf("channel %q is not one of your channels (%s)", t.channel, channelNames(channels))}
			}
		case "format":
			t.format = strings.ToLower(stripComment(value))
			if t.format != "text" && t.format != "html" {
				return nil, &templateError{Line: lineNo, Col: valueCol, Msg: fmt.Sprintf("format %q is not text or html", t.format)}
			}
		case "subject":
			subjectSrc, subjectLine, subjectCol = value, lineNo, valueCol
		case "from":
			t.sender = value
		}
	}
	if bodyStart < 0 {
		return nil, &templateError{Line: len(lines), Col: 1, Msg: "no --- line: write the header lines (channel, subject, format), then a line holding only ---, then the body"}
	}
	if t.channel == "" {
		t.channel = channels[0].Name
	}
	ch := findChannel(channels, t.channel)
	t.recipient = ch.RecipientField()
	if t.format == "html" && t.recipient != "email" {
		return nil, &templateError{Line: 1, Col: 1, Msg: fmt.Sprintf("format html is for email; channel %q sends to a %s", t.channel, t.recipient)}
	}
	body := strings.TrimRight(strings.Join(lines[bodyStart:], ""), " \t\n")
	if strings.TrimSpace(body) == "" {
		return nil, &templateError{Line: bodyStart + 1, Col: 1, Msg: "the body after --- is empty"}
	}

	t.subjectSrc, t.bodySrc = subjectSrc, body
	t.maxSubject, t.maxBody, t.budget = ch.SubjectLimit(), ch.BodyLimit(), budget
	t.instances = make(chan *tmplInstance, idleInstances)
	inst, err := t.newInstance()
	if err != nil {
		var pe *tmplParseError
		if !errors.As(err, &pe) {
			return nil, err
		}
		if pe.subject {
			_, col, msg := locateParseError(pe.err, subjectSrc)
			return nil, &templateError{Line: subjectLine, Col: subjectCol + col - 1, Msg: msg}
		}
		line, col, msg := locateParseError(pe.err, body)
		return nil, &templateError{Line: bodyStart + line, Col: col, Msg: msg}
	}
	subjectTrees, bodyTrees := inst.trees()
	for _, tree := range subjectTrees {
		if node, turns := checkRangeLiterals(tree, budget.steps); node != nil {
			_, col := textPosition(subjectSrc, node.Position())
			return nil, &templateError{Line: subjectLine, Col: subjectCol + col - 1, Msg: rangeTooLong(turns, budget.steps)}
		}
	}
	for _, tree := range bodyTrees {
		if node, turns := checkRangeLiterals(tree, budget.steps); node != nil {
			line, col := textPosition(body, node.Position())
			return nil, &templateError{Line: bodyStart + line, Col: col, Msg: rangeTooLong(turns, budget.steps)}
		}
	}
	if call := findRecursion(subjectTrees); call != nil {
		_, col := textPosition(subjectSrc, call.Position())
		return nil, &templateError{Line: subjectLine, Col: subjectCol + col - 1, Msg: recursionText(call)}
	}
	if call := findRecursion(bodyTrees); call != nil {
		line, col := textPosition(body, call.Position())
		return nil, &templateError{Line: bodyStart + line, Col: col, Msg: recursionText(call)}
	}
	if n := findUnsubscribe(subjectTrees); n != nil {
		_, col := textPosition(subjectSrc, n.Position())
		t.unsubAt = &templateError{Line: subjectLine, Col: subjectCol + col - 1, Msg: noPublicURL}
	} else if n := findUnsubscribe(bodyTrees); n != nil {
		line, col := textPosition(body, n.Position())
		t.unsubAt = &templateError{Line: bodyStart + line, Col: col, Msg: noPublicURL}
	}
	if inst.subject != nil {
		t.vars = appendVars(t.vars, inst.subject.Tree.Root)
		t.fastSubject = fastParts(inst.subject.Tree.Root)
	}
	bodyTree := bodyTrees[0] // the body itself comes first
	t.vars = appendVars(t.vars, bodyTree.Root)
	if t.format == "text" && (inst.subject == nil || t.fastSubject != nil) {
		t.fastBody = fastParts(bodyTree.Root)
	}
	if t.fastBody == nil {
		t.fastSubject = nil
	}
	// A test render with every variable empty: html/template checks its
	// escaping contexts on the first Execute, so a broken HTML template
	// fails at upload, not per row; and a template that cannot be rendered
	// within the bounds even so is refused now, not on every row.
	empty := make(map[string]string, len(t.vars))
	for _, v := range t.vars {
		empty[v] = ""
	}
	var buf bytes.Buffer
	inst.g.unsubURL = testUnsubscribeURL
	_, _, err = t.renderWith(context.Background(), inst, &buf, empty)
	var he *htmltemplate.Error
	var le *renderLimitError
	switch {
	case errors.As(err, &he) && he.ErrorCode != htmltemplate.OK:
		return nil, &templateError{Line: bodyStart + max(he.Line, 1), Col: 1, Msg: he.Description}
	case errors.As(err, &le):
		return nil, &templateError{Line: bodyStart + 1, Col: 1, Msg: "even with every variable empty, " + le.msg}
	}
	t.release(inst)
	return t, nil
}

// tmplParseError is a parse error of the subject or the body.
type tmplParseError struct {
	subject bool
	err     error
}

func (e *tmplParseError) Error() string { return e.err.Error() }

// newInstance compiles the template again with a guard of its own, and
// rewrites its trees so that the guard sees every loop.
func (t *messageTemplate) newInstance() (*tmplInstance, error) {
	g := &guard{budget: t.budget, maxText: t.maxBody, channel: t.channel}
	inst := &tmplInstance{g: g}
	funcs := templateFuncs(g)
	if t.subjectSrc != "" {
		st, err := template.New("subject").Option("missingkey=error").Funcs(funcs).Parse(t.subjectSrc)
		if err != nil {
			return nil, &tmplParseError{subject: true, err: err}
		}
		inst.subject = st
	}
	if t.format == "html" {
		ht, err := htmltemplate.New("body").Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs)).Parse(t.bodySrc)
		if err != nil {
			return nil, &tmplParseError{err: err}
		}
		inst.body = ht
	} else {
		tt, err := template.New("body").Option("missingkey=error").Funcs(funcs).Parse(t.bodySrc)
		if err != nil {
			return nil, &tmplParseError{err: err}
		}
		inst.body = tt
	}
	subject, body := inst.trees()
	for _, tree := range append(subject, body...) {
		guardTree(tree)
	}
	return inst, nil
}

// trees returns every parsed tree of the instance: the subject's, and the
// body's, the body itself first, then the templates it {{define}}s.
func (inst *tmplInstance) trees() (subject, body []*parse.Tree) {
	if inst.subject != nil {
		subject = append(subject, inst.subject.Tree)
		for _, x := range inst.subject.Templates() {
			if x.Tree != inst.subject.Tree {
				subject = append(subject, x.Tree)
			}
		}
	}
	switch b := inst.body.(type) {
	case *template.Template:
		body = append(body, b.Tree)
		for _, x := range b.Templates() {
			if x.Tree != b.Tree {
				body = append(body, x.Tree)
			}
		}
	case *htmltemplate.Template:
		body = append(body, b.Tree)
		for _, x := range b.Templates() {
			if x.Tree != b.Tree {
				body = append(body, x.Tree)
			}
		}
	}
	return subject, body
}

// textPosition returns the line and column (both 1-based) of a byte
// offset in text.
func textPosition(text string, pos parse.Pos) (line, col int) {
	p := min(max(int(pos), 0), len(text))
	before := text[:p]
	return 1 + strings.Count(before, "\n"), p - strings.LastIndexByte(before, '\n')
}

func recursionText(call *parse.TemplateNode) string {
	return fmt.Sprintf("{{template %q}} leads back to a template that is still running (recursion), which a message template may not use; write the text out instead", call.Name)
}

func rangeTooLong(turns, steps int64) string {
	return fmt.Sprintf("this range repeats its body %d times (with the loops around it) for every message, and a message may take at most %d steps (ingest.render_steps), so it could never be filled in: make the loop smaller", turns, steps)
}

// fastParts returns a text template's pieces when it holds nothing but text
// and {{.name}} actions, the usual message template. text/template prints
// a string variable as it is, so concatenating the pieces gives the same
// text as Execute at a fraction of its cost (it walks the tree through
// reflection on every row). It returns nil for any other template.
func fastParts(root *parse.ListNode) []fastPart {
	split, ok := fasttmpl.Split(root, func(p fasttmpl.Part) bool {
		return (p.Func == unsubscribeFunc && p.Field == nil) || (p.Func == "" && len(p.Field) == 1)
	})
	if !ok {
		return nil
	}
	parts := make([]fastPart, len(split))
	for i, p := range split {
		switch {
		case !p.Action:
			parts[i] = fastPart{text: p.Text}
		case p.Func == unsubscribeFunc:
			parts[i] = fastPart{unsub: true}
		default:
			parts[i] = fastPart{field: p.Field[0]}
		}
	}
	return parts
}

// renderFast concatenates parts; ok is false when a variable or the link
// is missing (Execute then reports it as it does).
func renderFast(buf *bytes.Buffer, parts []fastPart, vars map[string]string, unsubURL string) (string, bool) {
	buf.Reset()
	for _, p := range parts {
		if p.unsub {
			if unsubURL == "" {
				return "", false
			}
			buf.WriteString(unsubURL)
			continue
		}
		if p.field == "" {
			buf.WriteString(p.text)
			continue
		}
		v, ok := vars[p.field]
		if !ok {
			return "", false
		}
		buf.WriteString(v)
	}
	return buf.String(), true
}

// render executes the subject and body for one row's variables, within
// the channel's limits and the render budget. A bound passed is a
// *renderLimitError; ctx ending stops the render with ctx's error. A
// template that places {{unsubscribe_url}} needs renderFor.
func (t *messageTemplate) render(ctx context.Context, buf *bytes.Buffer, vars map[string]string) (subject, body string, err error) {
	return t.renderFor(ctx, buf, vars, "", "")
}

// renderFor is render for a message of partner to recipient (normalised
// as stored): {{unsubscribe_url}} gives that recipient's link.
func (t *messageTemplate) renderFor(ctx context.Context, buf *bytes.Buffer, vars map[string]string, partner, recipient string) (subject, body string, err error) {
	var unsubURL string
	if t.unsubAt != nil && t.links != nil && partner != "" && recipient != "" {
		unsubURL = t.links(partner, recipient)
	}
	if t.fastBody != nil {
		ok := true
		if t.fastSubject != nil {
			subject, ok = renderFast(buf, t.fastSubject, vars, unsubURL)
		}
		if ok {
			if body, ok = renderFast(buf, t.fastBody, vars, unsubURL); ok {
				// No loops, no functions: the variables alone make it long.
				if len(subject) > t.maxSubject {
					return "", "", t.tooLarge("subject", t.maxSubject)
				}
				if len(body) > t.maxBody {
					return "", "", t.tooLarge("body", t.maxBody)
				}
				return subject, body, nil
			}
		}
	}
	inst, err := t.instance()
	if err != nil {
		return "", "", err
	}
	defer t.release(inst)
	inst.g.unsubURL = unsubURL
	return t.renderWith(ctx, inst, buf, vars)
}

func (t *messageTemplate) renderWith(ctx context.Context, inst *tmplInstance, buf *bytes.Buffer, vars map[string]string) (subject, body string, err error) {
	inst.g.start(ctx)
	defer func() {
		inst.g.ctx = nil // do not keep a finished request's context alive
		inst.g.unsubURL = ""
		var le *renderLimitError
		switch {
		case err == nil:
		case errors.As(err, &le):
			err = le
		case isCancel(err) && ctx.Err() != nil:
			err = ctx.Err()
		}
	}()
	inst.out = limitedBuffer{buf: buf, g: inst.g}
	if inst.subject != nil {
		buf.Reset()
		inst.out.limit, inst.out.what = t.maxSubject, "subject"
		if err := inst.subject.Execute(&inst.out, vars); err != nil {
			return "", "", fmt.Errorf("subject: %w", err)
		}
		subject = buf.String()
	}
	buf.Reset()
	inst.out.limit, inst.out.what = t.maxBody, "body"
	if err := inst.body.Execute(&inst.out, vars); err != nil {
		return "", "", err
	}
	return subject, buf.String(), nil
}

func (t *messageTemplate) tooLarge(what string, limit int) error {
	return &renderLimitError{fmt.Sprintf("the rendered %s is larger than %s, the limit of channel %q", what, sizeText(limit), t.channel)}
}

// instance takes an idle instance, or compiles a new one.
func (t *messageTemplate) instance() (*tmplInstance, error) {
	select {
	case inst := <-t.instances:
		return inst, nil
	default:
		return t.newInstance()
	}
}

// release gives an instance back for the next render.
func (t *messageTemplate) release(inst *tmplInstance) {
	inst.out = limitedBuffer{}
	select {
	case t.instances <- inst:
	default:
	}
}

var parseErrorRe = regexp.MustCompile(`^template: [a-z]+:(\d+):(?:(\d+):)? ?(.*)$`)

// locateParseError turns a text/template parse error into a line and column
// within text. text/template names only the line; the column is that of the
// action at fault, found by parsing each action of the line on its own, or
// of the token the message quotes.
func locateParseError(err error, text string) (line, col int, msg string) {
	m := parseErrorRe.FindStringSubmatch(err.Error())
	if m == nil {
		return 1, 1, err.Error()
	}
	line, _ = strconv.Atoi(m[1])
	msg = m[3]
	if m[2] != "" {
		col, _ = strconv.Atoi(m[2])
		return line, col, msg
	}
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) {
		return max(line, 1), 1, msg
	}
	l := lines[line-1]
	for i := 0; i < len(l); {
		open := strings.Index(l[i:], "{{")
		if open < 0 {
			break
		}
		open += i
		end := strings.Index(l[open:], "}}")
		if end < 0 {
			return line, open + 1, msg
		}
		action := l[open : open+end+2]
		if _, perr := template.New("x").Funcs(templateFuncs(&guard{})).Parse(action); perr != nil && !strings.Contains(perr.Error(), "unexpected EOF") &&
			!strings.Contains(perr.Error(), "unexpected {{end}}") && !strings.Contains(perr.Error(), "unexpected {{else}}") {
			return line, open + 1, msg
		}
		i = open + end + 2
	}
	if q := quotedToken(msg); q != "" {
		if i := strings.Index(l, q); i >= 0 {
			return line, i + 1, msg
		}
	}
	if i := strings.Index(l, "{{"); i >= 0 {
		return line, i + 1, msg
	}
	return line, 1, msg
}

// quotedToken returns the first "quoted" token of a message.
func quotedToken(msg string) string {
	a := strings.IndexByte(msg, '"')
	if a < 0 {
		return ""
	}
	b := strings.IndexByte(msg[a+1:], '"')
	if b <= 0 {
		return ""
	}
	return msg[a+1 : a+1+b]
}

// appendVars adds the names of the fields the tree reads from its data
// ({{.first_name}}, {{$.first_name}}) to vars, once each.
func appendVars(vars []string, n parse.Node) []string {
	walkTemplate(n, func(n parse.Node) {
		name := ""
		switch n := n.(type) {
		case *parse.FieldNode:
			name = n.Ident[0]
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				name = n.Ident[1]
			}
		}
		if name != "" && !contains(vars, name) {
			vars = append(vars, name)
		}
	})
	return vars
}

// stripComment removes a trailing " # comment" from a one-word value.
func stripComment(v string) string {
	if i := strings.Index(v, "#"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

func findChannel(channels []config.Channel, name string) *config.Channel {
	for i := range channels {
		if channels[i].Name == name {
			return &channels[i]
		}
	}
	return nil
}

func channelNames(channels []config.Channel) string {
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
