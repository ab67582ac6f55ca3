package sender

import (
	"fmt"
	"net/url"
	"text/template"
	"text/template/parse"
)

// fastTemplate renders, without text/template's reflection, the shape
// nearly every provider body and header has: text and actions that print
// one field of httpData or one variable, as is or through json or
// urlquery, such as `{"to": {{json .To}}, "text": {{json .Body}}}`.
// text/template spent about 20 µs a message on the default body, as much as
// the sender's whole database work. The output is byte for byte
// text/template's (TestFastTemplateMatchesTextTemplate); any other shape
// keeps using text/template.
type fastTemplate struct {
	name  string
	parts []fastPart
}

// fastPart is a piece of text, or one printed value.
type fastPart struct {
	text   string
	field  func(*httpData) string // nil: text, or a variable when varName is set
	isVar  bool
	varKey string
	enc    fastEncoding
}

type fastEncoding int

const (
	encRaw fastEncoding = iota
	encJSON
	encURLQuery
)

// httpFields are the httpData fields a fast template may print.
var httpFields = map[string]func(*httpData) string{
	"To":      func(d *httpData) string { return d.To },
	"Body":    func(d *httpData) string { return d.Body },
	"Subject": func(d *httpData) string { return d.Subject },
	"ID":      func(d *httpData) string { return d.ID },
	"Ref":     func(d *httpData) string { return d.Ref },
	"Partner": func(d *httpData) string { return d.Partner },
	"Channel": func(d *httpData) string { return d.Channel },
	"From":    func(d *httpData) string { return d.From },
	"Format":  func(d *httpData) string { return d.Format },
}

// compileFast returns t as a fastTemplate, or false when t has a shape it
// does not render.
func compileFast(t *template.Template) (*fastTemplate, bool) {
	if t.Tree == nil || t.Tree.Root == nil || len(t.Templates()) > 1 {
		return nil, false
	}
	f := &fastTemplate{name: t.Name()}
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			f.parts = append(f.parts, fastPart{text: string(n.Text)})
		case *parse.ActionNode:
			p, ok := compileAction(n.Pipe)
			if !ok {
				return nil, false
			}
			f.parts = append(f.parts, p)
		default:
			return nil, false
		}
	}
	return f, true
}

// compileAction accepts {{.F}}, {{json .F}}, {{urlquery .F}} with F a
// field of httpData or Vars.<name>.
func compileAction(pipe *parse.PipeNode) (fastPart, bool) {
	if pipe == nil || pipe.IsAssign || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 {
		return fastPart{}, false
	}
	args := pipe.Cmds[0].Args
	var p fastPart
	switch len(args) {
	case 1:
	case 2:
		id, ok := args[0].(*parse.IdentifierNode)
		if !ok {
			return fastPart{}, false
		}
		switch id.Ident {
		case "json":
			p.enc = encJSON
		case "urlquery":
			p.enc = encURLQuery
		default:
			return fastPart{}, false
		}
	default:
		return fastPart{}, false
	}
	field, ok := args[len(args)-1].(*parse.FieldNode)
	if !ok {
		return fastPart{}, false
	}
	switch {
	case len(field.Ident) == 1 && httpFields[field.Ident[0]] != nil:
		p.field = httpFields[field.Ident[0]]
	case len(field.Ident) == 2 && field.Ident[0] == "Vars":
		p.isVar, p.varKey = true, field.Ident[1]
	default:
		return fastPart{}, false
	}
	return p, true
}

// render appends the output for d to b.
func (f *fastTemplate) render(b []byte, d *httpData) ([]byte, error) {
	for i := range f.parts {
		p := &f.parts[i]
		var v string
		switch {
		case p.isVar:
			var ok bool
			if v, ok = d.Vars[p.varKey]; !ok {
				// text/template's words under missingkey=error.
				return b, fmt.Errorf("template: %s: map has no entry for key %q", f.name, p.varKey)
			}
		case p.field != nil:
			v = p.field(d)
		default:
			b = append(b, p.text...)
			continue
		}
		switch p.enc {
		case encJSON:
			b = appendJSONString(b, v)
		case encURLQuery:
			b = append(b, url.QueryEscape(v)...)
		default:
			b = append(b, v...)
		}
	}
	return b, nil
}
