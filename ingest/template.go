package ingest

import (
	"bytes"
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
)

// messageTemplate is one parsed, checked version of a partner's template,
// ready to render rows. It is immutable once parsed, so files being ingested
// may share it.
type messageTemplate struct {
	name      string
	version   int
	channel   string
	recipient string // the column that addresses the channel: email or phone
	format    string // text | html
	sender    string
	subject   *template.Template // nil when the template has no subject
	body      executor
	// vars are the row columns the template reads, in first-use order.
	vars []string
	// fastSubject and fastBody render a text template that is only text
	// and {{.name}} actions by concatenation; nil when it is not one.
	fastSubject, fastBody []fastPart
}

// fastPart is a piece of a plain text template: literal text, or the
// variable named by field when field is not "".
type fastPart struct {
	text, field string
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

	funcs := templateFuncs()
	if subjectSrc != "" {
		st, err := template.New("subject").Option("missingkey=error").Funcs(funcs).Parse(subjectSrc)
		if err != nil {
			_, col, msg := locateParseError(err, subjectSrc)
			return nil, &templateError{Line: subjectLine, Col: subjectCol + col - 1, Msg: msg}
		}
		t.subject = st
		t.vars = appendVars(t.vars, st.Tree.Root)
		t.fastSubject = fastParts(st.Tree.Root)
	}
	if t.format == "html" {
		ht, err := htmltemplate.New("body").Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs)).Parse(body)
		if err != nil {
			line, col, msg := locateParseError(err, body)
			return nil, &templateError{Line: bodyStart + line, Col: col, Msg: msg}
		}
		// html/template checks its escaping contexts on the first Execute;
		// do it now so a broken HTML template fails at upload, not per row.
		if err := ht.Execute(io.Discard, map[string]string{}); err != nil {
			var he *htmltemplate.Error
			if errors.As(err, &he) {
				return nil, &templateError{Line: bodyStart + max(he.Line, 1), Col: 1, Msg: he.Description}
			}
		}
		t.body = ht
		t.vars = appendVars(t.vars, ht.Tree.Root)
	} else {
		tt, err := template.New("body").Option("missingkey=error").Funcs(funcs).Parse(body)
		if err != nil {
			line, col, msg := locateParseError(err, body)
			return nil, &templateError{Line: bodyStart + line, Col: col, Msg: msg}
		}
		t.body = tt
		t.vars = appendVars(t.vars, tt.Tree.Root)
		if t.subject == nil || t.fastSubject != nil {
			t.fastBody = fastParts(tt.Tree.Root)
		}
	}
	return t, nil
}

// fastParts returns a text template's pieces when it holds nothing but text
// and {{.name}} actions, the usual message template. text/template prints
// a string variable as it is, so concatenating the pieces gives the same
// text as Execute at a fraction of its cost (it walks the tree through
// reflection on every row). It returns nil for any other template.
func fastParts(root *parse.ListNode) []fastPart {
	if root == nil {
		return nil
	}
	parts := []fastPart{}
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, fastPart{text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			parts = append(parts, fastPart{field: f.Ident[0]})
		default:
			return nil
		}
	}
	return parts
}

// renderFast concatenates parts; ok is false when a variable is missing
// (Execute then reports it as it does).
func renderFast(buf *bytes.Buffer, parts []fastPart, vars map[string]string) (string, bool) {
	buf.Reset()
	for _, p := range parts {
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

// render executes the subject and body for one row's variables.
func (t *messageTemplate) render(buf *bytes.Buffer, vars map[string]string) (subject, body string, err error) {
	if t.fastBody != nil {
		ok := true
		if t.fastSubject != nil {
			subject, ok = renderFast(buf, t.fastSubject, vars)
		}
		if ok {
			if body, ok = renderFast(buf, t.fastBody, vars); ok {
				return subject, body, nil
			}
		}
	}
	if t.subject != nil {
		buf.Reset()
		if err := t.subject.Execute(buf, vars); err != nil {
			return "", "", fmt.Errorf("subject: %w", err)
		}
		subject = buf.String()
	}
	buf.Reset()
	if err := t.body.Execute(buf, vars); err != nil {
		return "", "", err
	}
	return subject, buf.String(), nil
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
		if _, perr := template.New("x").Funcs(templateFuncs()).Parse(action); perr != nil && !strings.Contains(perr.Error(), "unexpected EOF") &&
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
	add := func(name string) {
		if !contains(vars, name) {
			vars = append(vars, name)
		}
	}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case nil:
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			add(n.Ident[0])
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				add(n.Ident[1])
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	walk(n)
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
