package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dropgate/dropgate/config"
)

// FuzzReadCSV feeds arbitrary bytes to the CSV reader: it must never panic,
// never return a record longer than the limit allows, and report lines that
// only go forward.
func FuzzReadCSV(f *testing.F) {
	for _, seed := range []string{
		"phone,first_name\n912345678,Ana\n",
		"\xef\xbb\xbfemail;name\r\na@b.pt;\"x\ny\"\r\n",
		"a|b\n\"unclosed|x\n",
		"a\tb\n1\t2\t3\n",
		"",
		"\n\n\n",
		"a,\"b\"\"c\",d\n",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, latin1 bool) {
		enc := "utf-8"
		if latin1 {
			enc = "windows-1252"
		}
		const maxRow = 256
		cr, err := newCSVReader(bytes.NewReader(data), enc, maxRow)
		if err != nil {
			return
		}
		if latin1 && !cr.checkUTF8 {
			for _, h := range cr.header {
				if !utf8.ValidString(h) {
					t.Fatalf("decoded header %q is not UTF-8", h)
				}
			}
		}
		last := 0
		for range 10_000 {
			fields, line, err := cr.read()
			if errors.Is(err, io.EOF) {
				return
			}
			var tooLong *recordTooLongError
			if errors.As(err, &tooLong) {
				return
			}
			if line < last {
				t.Fatalf("line went back from %d to %d", last, line)
			}
			last = line
			if err != nil {
				continue
			}
			if n := len(strings.Join(fields, ",")); n > maxRow+2*readBufferSize {
				t.Fatalf("record of %d bytes passed a %d-byte limit", n, maxRow)
			}
		}
	})
}

// FuzzParseTemplate feeds arbitrary text to the template parser: it must
// never panic, and every rejection must point at a line and column inside
// the file. A template that parses is rendered through the guard, with
// every variable empty and then long: the render must not panic, and what
// it returns stays within the channel's limits.
func FuzzParseTemplate(f *testing.F) {
	for _, seed := range []string{
		"channel: sms\n---\nHi {{.first_name}}\n",
		"channel: email\nsubject: {{.x | upper}}\nformat: html\n---\n<p>{{.y}}</p>\n",
		"---\n{{if .a}}x{{end}}",
		"channel: fax\n---\nx",
		"no header\n",
		"channel: sms\n---\n{{.a | env \"HOME\"}}",
		"channel: email\nformat: html\n---\n<a href=\"{{.u}}\n",
		"channel: sms\n---\n{{range 300}}{{range (len $.a)}}0123456789{{end}}{{end}}",
		"channel: email\n---\n{{$x := replace \"a\" \"aaaaaaaaaa\" .a}}{{$x = replace \"a\" \"aaaaaaaaaa\" $x}}{{$x}}",
		"channel: email\nsubject: {{range 90}}{{$.a}}{{end}}\n---\n{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}",
		"channel: sms\n---\n{{printf \"%0999d\" 1}}{{range $i, $c := .}}{{$i}}{{break}}{{end}}",
	} {
		f.Add(seed)
	}
	channels := config.DefaultChannels()
	budget := renderBudget{steps: 20_000, timeout: 100 * time.Millisecond}
	f.Fuzz(func(t *testing.T, src string) {
		mt, err := parseTemplateBudget("fuzz", src, channels, budget)
		if err != nil {
			var te *templateError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a templateError", err)
			}
			lines := strings.Count(strings.ReplaceAll(src, "\r\n", "\n"), "\n") + 1
			if te.Line < 1 || te.Line > lines+1 || te.Col < 1 {
				t.Fatalf("error at line %d column %d of a %d-line file: %v", te.Line, te.Col, lines, te)
			}
			return
		}
		var buf bytes.Buffer
		for _, value := range []string{"", strings.Repeat("a", 500)} {
			vars := map[string]string{}
			for _, v := range mt.vars {
				vars[v] = value
			}
			subject, body, err := mt.render(context.Background(), &buf, vars) // may fail; must not panic
			if err == nil && (len(subject) > mt.maxSubject || len(body) > mt.maxBody) {
				t.Fatalf("rendered a %d-byte subject and a %d-byte body past the limits %d and %d", len(subject), len(body), mt.maxSubject, mt.maxBody)
			}
			if buf.Len() > max(mt.maxSubject, mt.maxBody) {
				t.Fatalf("the render buffered %d bytes past the limits", buf.Len())
			}
		}
	})
}
