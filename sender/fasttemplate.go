package sender

import (
	"fmt"
	"net/url"
	"text/template"

	"github.com/dropgate/dropgate/internal/fasttmpl"
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
// does not render: it accepts {{.F}}, {{json .F}}, {{urlquery .F}} with F
// a field of httpData or Vars.<name>.
func compileFast(t *template.Template) (*fastTemplate, bool) {
	if t.Tree == nil || len(t.Templates()) > 1 {
		return nil, false
	}
	split, ok := fasttmpl.Split(t.Tree.Root, func(p fasttmpl.Part) bool {
		_, ok := fastAction(p)
		return ok
	})
	if !ok {
		return nil, false
	}
	f := &fastTemplate{name: t.Name(), parts: make([]fastPart, len(split))}
	for i, p := range split {
		if !p.Action {
			f.parts[i] = fastPart{text: p.Text}
			continue
		}
		f.parts[i], _ = fastAction(p)
	}
	return f, true
}

// fastAction is the fastPart of an action, or false for one the fast path
// does not print.
func fastAction(a fasttmpl.Part) (fastPart, bool) {
	var p fastPart
	switch a.Func {
	case "":
	case "json":
		p.enc = encJSON
	case "urlquery":
		p.enc = encURLQuery
	default:
		return fastPart{}, false
	}
	switch {
	case len(a.Field) == 1 && httpFields[a.Field[0]] != nil:
		p.field = httpFields[a.Field[0]]
	case len(a.Field) == 2 && a.Field[0] == "Vars":
		p.isVar, p.varKey = true, a.Field[1]
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
