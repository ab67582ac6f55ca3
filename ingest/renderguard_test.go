package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"github.com/dropgate/dropgate/config"
)

// TestGuardedRenderMatchesTextTemplate: the rewritten tree (every range
// through the guard's iterator, every {{template}} call through its step)
// renders exactly what text/template renders from the same text, for every
// shape of range and call.
func TestGuardedRenderMatchesTextTemplate(t *testing.T) {
	vars := map[string]string{"a": "x", "b": "", "n": "Ana Maria", "d": "2026-03-05"}
	for _, body := range []string{
		`{{range 3}}{{.}},{{end}}`,
		`{{range $i := 4}}{{$i}}{{end}}`,
		`{{range 0}}never{{else}}empty{{end}}`,
		`{{range -2}}never{{else}}negative{{end}}`,
		`{{range $k, $v := .}}{{$k}}={{$v}};{{end}}`,
		`{{range $v := .}}[{{$v}}]{{end}}`,
		`{{range .}}<{{.}}>{{end}}`,
		`{{range 10}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 5}}{{break}}{{end}}{{.}}{{end}}`,
		`{{range 2}}{{range $}}{{.}}{{end}}|{{end}}`,
		`{{define "x"}}<{{.}}>{{end}}{{template "x" .a}}{{template "x"}}{{template "x" "lit"}}`,
		`{{block "y" .n}}[{{.}}]{{end}}`,
		`{{with .a}}{{range 2}}{{.}}{{end}}{{end}}`,
		`{{$x := replace "a" "bb" "aXa"}}{{$x}} {{upper .n}} {{title "ana maria"}} {{.d | date "02/01/2006"}} {{truncate 3 .n}}`,
		`{{printf "%05d|%s" 42 .a}} {{print 1 2 .a}} {{println .a}} {{html "<b>"}} {{js "a'b"}} {{urlquery "a b&c"}} {{len .n}} {{index . "a"}} {{slice .n 1 3}}`,
		`{{range (len .n)}}{{.}}{{end}}`,
		// Past smallRange, through the counting iterator.
		`{{range 2000}}{{if lt . 3}}{{continue}}{{end}}{{if eq . 6}}{{break}}{{end}}{{.}}{{end}}`,
		`{{range $i := 1500}}{{if eq $i 1499}}{{$i}}{{end}}{{end}}`,
		`{{range 1025}}{{if eq . 1024}}last{{end}}{{else}}never{{end}}`,
		`{{range $i, $v := 2000}}{{end}}`,
		`{{range $i, $c := slice .n 0 3}}{{$i}}{{$c}}{{end}}`,
	} {
		src := "channel: email\nsubject: S {{.a}}\n---\n" + body
		mt, err := parseTemplate("t", src, config.DefaultChannels())
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		var buf bytes.Buffer
		_, got, gotErr := mt.render(context.Background(), &buf, vars)

		free := &guard{budget: renderBudget{steps: 1 << 40, timeout: time.Hour}, maxText: 1 << 30}
		free.start(context.Background())
		plain, err := template.New("body").Option("missingkey=error").Funcs(templateFuncs(free)).Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		wantErr := plain.Execute(&buf, vars)
		if got != buf.String() || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s:\n guarded %q, %v\n plain   %q, %v", body, got, gotErr, buf.String(), wantErr)
		}
	}
}

// slowMachine is the default step budget with a deadline that a busy
// machine under -race cannot reach first, so the tests see the step bound.
var slowMachine = renderBudget{steps: defaultRenderBudget.steps, timeout: time.Hour}

// TestGuardedHTMLRenderMatchesHTMLTemplate: the same for html/template,
// whose escaper rewrites the tree after the guard did.
func TestGuardedHTMLRenderMatchesHTMLTemplate(t *testing.T) {
	vars := map[string]string{"a": "<b>\"x\"</b>", "u": "http://e.x/?q=a b", "n": "Ana"}
	for _, body := range []string{
		`<p>{{range 3}}{{.}}{{$.a}}{{end}}</p>`,
		`<a href="{{.u}}">{{range $k, $v := .}}{{$k}}={{$v}} {{end}}</a>`,
		`{{define "x"}}<i>{{.}}</i>{{end}}{{template "x" .a}}{{template "x"}}<script>var n = {{.n}};{{range 2}}{{$.a}}{{end}}</script>`,
		`{{range 0}}x{{else}}<em>{{.a}}</em>{{end}}{{with .n}}{{range 2}}{{.}}{{end}}{{end}}`,
	} {
		mt, err := parseTemplate("t", "channel: email\nformat: html\n---\n"+body, config.DefaultChannels())
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		var buf bytes.Buffer
		_, got, gotErr := mt.render(context.Background(), &buf, vars)
		free := &guard{budget: renderBudget{steps: 1 << 40, timeout: time.Hour}, maxText: 1 << 30}
		free.start(context.Background())
		plain, err := htmltemplate.New("body").Option("missingkey=error").Funcs(htmltemplate.FuncMap(templateFuncs(free))).Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		wantErr := plain.Execute(&buf, vars)
		if got != buf.String() || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s:\n guarded %q, %v\n plain   %q, %v", body, got, gotErr, buf.String(), wantErr)
		}
	}
}

// TestRenderStopsAtEachBound: the hostile shapes of the issue, and each way
// a template can make a big number or a big text, fail the render with the
// partner's reason instead of running on.
func TestRenderStopsAtEachBound(t *testing.T) {
	long := strings.Repeat("a", 3000)
	chain := `{{$x := replace "a" "aaaaaaaaaa" .s}}` + strings.Repeat(`{{$x = replace "a" "aaaaaaaaaa" $x}}`, 7)
	for _, tc := range []struct {
		name, channel, body string
		vars                map[string]string
		want                string
	}{
		{"range output past the body limit", "email", `{{range (len .long)}}{{range (len $.long)}}` + strings.Repeat("x", 49) + `{{end}}{{end}}`,
			map[string]string{"long": long}, `the rendered body is larger than 1 MiB, the limit of channel "email"`},
		{"output past the body limit", "sms", `{{range (len .long)}}0123456789{{end}}`,
			map[string]string{"long": long}, `the rendered body is larger than 4 KiB, the limit of channel "sms"`},
		{"nested loops without output", "email", `{{range (len .long)}}{{range (len $.long)}}{{end}}{{end}}`,
			map[string]string{"long": long}, "the template does too much work"},
		{"replace chain in a variable", "email", chain + "ok",
			map[string]string{"s": "a"}, `replace would make a text of 10000000 bytes, larger than 1 MiB, the limit of channel "email"`},
		{"printf width", "sms", `{{$x := printf (printf "%%0%sd" .w) 1}}ok`,
			map[string]string{"w": "999999"}, `printf would make a text of 1000009 bytes, larger than 4 KiB`},
		{"printf doubling", "email", `{{$x := printf "%s" .long}}` + strings.Repeat(`{{$x = printf "%s%s" $x $x}}`, 10) + `ok`,
			map[string]string{"long": long}, `printf would make a text of 1536004 bytes, larger than 1 MiB`},
		{"recursive templates", "email", `{{define "a"}}{{template "b" .}}{{template "b" .}}{{end}}` +
			`{{define "b"}}{{template "c" .}}{{template "c" .}}{{end}}{{define "c"}}{{range 200}}{{end}}{{end}}` +
			`{{if .go}}` + strings.Repeat(`{{template "a" .}}`, 200) + `{{end}}`, map[string]string{"go": "1"}, "the template does too much work"},
		{"subject", "email", `body`, map[string]string{"long": long}, `the rendered subject is larger than 1 KiB`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subject := ""
			if tc.name == "subject" {
				subject = "subject: {{.long}}\n"
			}
			src := "channel: " + tc.channel + "\n" + subject + "---\n" + tc.body
			mt, err := parseTemplateBudget("t", src, config.DefaultChannels(), slowMachine)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var buf bytes.Buffer
			_, body, err := mt.render(context.Background(), &buf, tc.vars)
			var le *renderLimitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render = %d bytes, %v; want a limit error with %q", len(body), err, tc.want)
			}
			if buf.Len() > config.DefaultEmailBodyBytes {
				t.Errorf("the render buffered %d bytes", buf.Len())
			}
		})
	}
}

// TestRenderDeadlineStopsWorkTheStepsAllow: with a budget too large to
// matter, the deadline still ends a render that runs on.
func TestRenderDeadlineStopsWorkTheStepsAllow(t *testing.T) {
	mt, err := parseTemplateBudget("t", "channel: email\n---\n{{range (len .s)}}{{range (len $.s)}}{{range (len $.s)}}{{end}}{{end}}{{end}}",
		config.DefaultChannels(), renderBudget{steps: 1 << 50, timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _, err = mt.render(context.Background(), &buf, map[string]string{"s": strings.Repeat("x", 100_000)})
	if err == nil || !strings.Contains(err.Error(), "took longer than 20ms") {
		t.Fatalf("render: %v, want the deadline", err)
	}
}

// TestRenderStopsWhenContextEnds: a cancelled context (the daemon
// stopping) ends a long render with the context's error, not a limit.
func TestRenderStopsWhenContextEnds(t *testing.T) {
	mt, err := parseTemplateBudget("t", "channel: email\n---\n{{range (len .s)}}{{range (len $.s)}}{{end}}{{end}}",
		config.DefaultChannels(), renderBudget{steps: 1 << 50, timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	_, _, err = mt.render(ctx, &buf, map[string]string{"s": strings.Repeat("x", 100_000)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("render: %v, want context.Canceled", err)
	}
}

// TestUploadRefusesTemplatesThatCanNeverRender: loops over literals whose
// product passes the budget are refused at upload with their place, and so
// is a template that fails its bounds with every variable empty (the
// html/template test render at upload is bounded too).
func TestUploadRefusesTemplatesThatCanNeverRender(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		want      string
	}{
		{"channel: sms\n---\n{{range 10000000}}0123456789012345678901234567890123456789012345678{{end}}", 3, 9, "repeats its body 10000000 times"},
		{"channel: sms\n---\nHi\n  {{range 2000}}{{range 2000}}{{end}}{{end}}", 4, 25, "repeats its body 2000 times"},
		{"channel: email\nformat: html\n---\n<p>{{range 200000}}{{range 200000}}{{end}}{{end}}</p>", 4, 12, "repeats its body 200000 times"},
		{"channel: email\nsubject: {{range 1000000}}x{{end}}\n---\nbody", 2, 18, "repeats its body 1000000 times"},
		{"channel: email\nformat: html\n---\n<p>{{range (len (printf \"%0999999d\" 0))}}{{range (len (printf \"%0999999d\" 0))}}{{end}}{{end}}</p>", 4, 1,
			"even with every variable empty, the template does too much work"},
		{"channel: sms\n---\nHi\n{{define \"a\"}}{{template \"b\" .}}{{end}}{{define \"b\"}}x{{template \"a\" .}}{{end}}{{template \"a\" .}}", 4, 66,
			`{{template "a"}} leads back to a template that is still running (recursion)`},
		{"channel: sms\n---\n" + `{{$x := replace "a" "aaaaaaaaaa" "aaaaaaaaaa"}}` + strings.Repeat(`{{$x = replace "a" "aaaaaaaaaa" $x}}`, 7), 3, 1,
			"even with every variable empty, replace would make a text of"},
	} {
		_, err := parseTemplateBudget("t", tc.src, config.DefaultChannels(), slowMachine)
		var te *templateError
		if !errors.As(err, &te) || te.Line != tc.line || te.Col != tc.col || !strings.Contains(te.Msg, tc.want) {
			t.Errorf("%q:\n got %v\n want line %d, column %d: ...%s...", tc.src, err, tc.line, tc.col, tc.want)
		}
	}
}

// TestConcurrentRendersOfOneTemplateKeepTheirOwnBudgets: API sends render
// the same template at once; each render's steps and output are its own
// (run with -race).
func TestConcurrentRendersOfOneTemplateKeepTheirOwnBudgets(t *testing.T) {
	mt, err := parseTemplate("t", "channel: sms\n---\n{{range (len .n)}}{{$.n}}{{end}}", config.DefaultChannels())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for j := range 50 {
				n := strings.Repeat("x", 1+(i+j)%60)
				_, body, err := mt.render(context.Background(), &buf, map[string]string{"n": n})
				if err != nil || body != strings.Repeat(n, len(n)) {
					errs <- fmt.Errorf("render %d/%d: %d bytes, %v", i, j, len(body), err)
					return
				}
			}
			// One render past the limit must not poison the next.
			if _, _, err := mt.render(context.Background(), &buf, map[string]string{"n": strings.Repeat("y", 100)}); err == nil {
				errs <- errors.New("a 10,000-byte sms rendered")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkRenderExecute measures what the guard costs a row whose template
// needs text/template (functions, a loop): the guarded render against
// text/template's own Execute of the same text with the unbounded
// functions dropgate had before.
//
//	go test ./ingest -run '^$' -bench BenchmarkRenderExecute
func BenchmarkRenderExecute(b *testing.B) {
	body := `Ola {{.first_name | title}}, a sua encomenda {{.order_id}} foi enviada{{range 3}}.{{end}} {{if .city}}({{upper .city}}){{end}}`
	vars := map[string]string{"first_name": "ana", "order_id": "A-123", "city": "Lisboa"}
	mt, err := parseTemplate("t", "channel: sms\n---\n"+body, config.DefaultChannels())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("guarded", func(b *testing.B) {
		var buf bytes.Buffer
		ctx := context.Background()
		for b.Loop() {
			if _, _, err := mt.render(ctx, &buf, vars); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		// The functions as they were before the guard: unbounded.
		titler := cases.Title(language.Und)
		funcs := template.FuncMap{"upper": strings.ToUpper, "title": func(s string) string { return titler.String(s) }}
		plain := template.Must(template.New("body").Option("missingkey=error").Funcs(funcs).Parse(body))
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := plain.Execute(&buf, vars); err != nil {
				b.Fatal(err)
			}
			_ = buf.String()
		}
	})
}
