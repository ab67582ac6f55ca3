package fasttmpl

import (
	"reflect"
	"testing"
	"text/template"
)

func TestSplitFindsThePlainShapeAndRefusesTheRest(t *testing.T) {
	funcs := template.FuncMap{"json": func(string) string { return "" }, "link": func() string { return "" }}
	all := func(Part) bool { return true }
	cases := []struct {
		src  string
		want []Part // nil: not plain
	}{
		{"Hi {{.name}}!", []Part{{Text: "Hi "}, {Action: true, Field: []string{"name"}}, {Text: "!"}}},
		{`{"to":{{json .Vars.to}}}`, []Part{{Text: `{"to":`}, {Action: true, Func: "json", Field: []string{"Vars", "to"}}, {Text: "}"}}},
		{"{{link}}", []Part{{Action: true, Func: "link"}}},
		{"", []Part{}},
		{"{{if .a}}x{{end}}", nil},
		{"{{.a | json}}", nil},
		{"{{$x := .a}}{{$x}}", nil},
		{"{{.}}", nil},
		{`{{json "lit"}}`, nil},
		{"{{/* note */}}x", []Part{{Text: "x"}}},
	}
	for _, c := range cases {
		tm := template.Must(template.New("t").Funcs(funcs).Parse(c.src))
		got, ok := Split(tm.Tree.Root, all)
		if c.want == nil {
			if ok {
				t.Errorf("%q: split as %+v, want refused", c.src, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v (ok %v), want %+v", c.src, got, ok, c.want)
		}
	}
	tm := template.Must(template.New("t").Parse("a{{.b}}"))
	if _, ok := Split(tm.Tree.Root, func(p Part) bool { return p.Field[0] != "b" }); ok {
		t.Error("an action the caller refuses still split")
	}
}
