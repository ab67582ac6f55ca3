package ingest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
)

// TestRenderRowMatchesRender holds the render from a row's fields equal to
// the template's render with the row's variables map: plain templates
// (with and without a subject), templates that name a column that is not a
// variable or no column at all, templates text/template executes, and
// values that pass the channel's limits.
func TestRenderRowMatchesRender(t *testing.T) {
	channels := config.DefaultChannels()
	names := []string{"phone", "email", "first_name", "order_id", "ref", "city", "", "note"}
	cols, ferr := newColumns(names)
	if ferr != nil {
		t.Fatal(ferr)
	}
	long := strings.Repeat("x", 70_000)
	rows := [][]string{
		{"912345678", "a@b.pt", "Ana", "ORD-1", "r1", "Lisboa", "zz", "n"},
		{"912345679", "", " Zé <b>\"", "", "", "São Paulo", "", "{{.x}}"},
		{"", "", "", "", "", "", "", ""},
		{"1", "2", long, "3", "4", "5", "6", "7"},
	}
	for _, tc := range []struct {
		src  string
		plan bool
	}{
		{"channel: sms\n---\nOla {{.first_name}}, a sua encomenda {{.order_id}} foi enviada.\n", true},
		{"channel: email\nsubject: Order {{.order_id}} {{.city}}\n---\n{{.first_name}}{{.order_id}}\n\n{{.note}}bye", true},
		{"channel: email\nsubject: Order\n---\nplain text only", true},
		{"channel: email\nsubject: Order {{.long_gone}}\n---\n{{.first_name}}", false},
		{"channel: sms\n---\nOla {{.first_name}} {{.phone}}", false},
		{"channel: sms\n---\nOla {{.ref}}", false},
		{"channel: sms\n---\nOla {{.nothere}}", false},
		{"channel: sms\n---\nOla {{upper .first_name}}", false},
		{"channel: sms\n---\n{{if .first_name}}x{{end}}{{.city}}", false},
		{"channel: email\nformat: html\n---\n<p>{{.first_name}}</p>", false},
		{"channel: email\nsubject: Hi {{.first_name}}\n---\n{{.first_name}}: leave at {{unsubscribe_url}} now", true},
	} {
		mt, err := parseTemplate("t", tc.src, channels)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := cols.plan(mt) != nil; got != tc.plan {
			t.Errorf("%q: column plan %v, want %v", tc.src, got, tc.plan)
		}
		fj := &fileJob{}
		// Without a link maker, and (for a template that places the
		// unsubscribe link) with one: each recipient gets its own link.
		makers := []func(partner, recipient string) string{nil}
		if mt.unsubAt != nil {
			makers = append(makers, func(partner, recipient string) string { return "https://gate.example/u/" + partner + "/" + recipient })
		}
		for _, links := range makers {
			mt.links = links
			for i, fields := range rows {
				recipient := fmt.Sprintf("r%d@example.com", i)
				var buf bytes.Buffer
				ws, wb, werr := mt.renderFor(context.Background(), &buf, cols.varsMap(fields), "acme", recipient)
				for _, vars := range []map[string]string{nil, cols.varsMap(fields)} {
					gs, gb, gerr := fj.renderRow(context.Background(), cols, mt, fields, vars, "acme", recipient)
					if gs != ws || gb != wb || fmt.Sprint(gerr) != fmt.Sprint(werr) {
						t.Errorf("%q, row %.40q: renderRow = %.60q, %.60q, %v; render %.60q, %.60q, %v", tc.src, fields, gs, gb, gerr, ws, wb, werr)
					}
				}
				if links != nil && werr == nil && !strings.Contains(wb, recipient) {
					t.Errorf("%q: body %.80q lacks the recipient's link", tc.src, wb)
				}
			}
		}
	}
}
