package ingest

import (
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// templateFuncs is the whole function set a partner's template may call.
// It is deliberately small and pure: no environment, files, network or clock,
// so a template renders the same at ingest as anywhere else, and an uploaded
// template cannot read anything from the server.
//
//	upper s            "ANA"
//	lower s            "ana"
//	title s            "Ana Maria" (first letter of each word upper case)
//	trim s             s without leading and trailing spaces
//	default d s        d when s is empty or blank, else s: {{.name | default "friend"}}
//	date layout s      s (RFC 3339, "YYYY-MM-DD HH:MM" or "YYYY-MM-DD") in a Go layout: {{.due | date "02/01/2006"}}
//	truncate n s       at most n characters of s
//	replace old new s  s with every old replaced by new
//	unsubscribe_url    the recipient's one-click unsubscribe link (needs [admin] public_url)
//
// Every function reports to the render's guard g: each call is a step, and
// a function that makes text (these, and text/template's own print,
// printf, println, html, js and urlquery, replaced here by bounded
// equivalents) refuses to make more than the channel's body limit. Without
// that, {{$x := replace "a" "aaaaaaaaaa" .s}} repeated eight times builds
// 100 MB in a variable while writing nothing.
func templateFuncs(g *guard) template.FuncMap {
	titler := cases.Title(language.Und)
	made := func(fn, s string) (string, error) {
		if err := g.text(fn, len(s)); err != nil {
			return "", err
		}
		return s, nil
	}
	funcs := template.FuncMap{
		"upper": func(s string) (string, error) { return made("upper", strings.ToUpper(s)) },
		"lower": func(s string) (string, error) { return made("lower", strings.ToLower(s)) },
		"title": func(s string) (string, error) { return made("title", titler.String(s)) },
		"trim":  func(s string) (string, error) { return strings.TrimSpace(s), g.step(1) },
		"default": func(def, s string) (string, error) {
			if strings.TrimSpace(s) == "" {
				return def, g.step(1)
			}
			return s, g.step(1)
		},
		"date": func(layout, s string) (string, error) {
			if err := g.text("date", len(layout)*4); err != nil {
				return "", err
			}
			return formatDate(layout, s)
		},
		"truncate": func(n int, s string) (string, error) { return truncate(n, s), g.step(1) },
		// The link is made per recipient before the render (renderFor);
		// it is as pure as the rest: the same recipient, the same link.
		unsubscribeFunc: func() (string, error) {
			if g.unsubURL == "" {
				return "", errNoUnsubscribeURL
			}
			return made(unsubscribeFunc, g.unsubURL)
		},
		"replace": func(old, new, s string) (string, error) {
			n := strings.Count(s, old) // len(s)+1 when old is ""
			if err := g.text("replace", len(s)+n*(len(new)-len(old))); err != nil {
				return "", err
			}
			return strings.ReplaceAll(s, old, new), nil
		},

		// text/template's builtins that make text, bounded.
		"print": func(args ...any) (string, error) {
			if err := g.text("print", estimate(args)); err != nil {
				return "", err
			}
			return made("print", fmt.Sprint(args...))
		},
		"println": func(args ...any) (string, error) {
			if err := g.text("println", estimate(args)); err != nil {
				return "", err
			}
			return made("println", fmt.Sprintln(args...))
		},
		"printf": func(format string, args ...any) (string, error) {
			// A width or precision ("%0999999d") makes that many bytes from
			// nothing: count the numbers in the format too.
			if err := g.text("printf", len(format)+formatNumbers(format)+estimate(args)); err != nil {
				return "", err
			}
			return made("printf", fmt.Sprintf(format, args...))
		},
		"html": func(args ...any) (string, error) {
			if err := g.text("html", estimate(args)); err != nil {
				return "", err
			}
			return made("html", template.HTMLEscaper(args...))
		},
		"js": func(args ...any) (string, error) {
			if err := g.text("js", estimate(args)); err != nil {
				return "", err
			}
			return made("js", template.JSEscaper(args...))
		},
		"urlquery": func(args ...any) (string, error) {
			if err := g.text("urlquery", estimate(args)); err != nil {
				return "", err
			}
			return made("urlquery", template.URLQueryEscaper(args...))
		},
	}
	for k, v := range g.guardFuncs() {
		funcs[k] = v
	}
	return funcs
}

// estimate is a lower bound of the text args print as: their strings'
// lengths, and a little for any other value. It lets a function refuse
// before building a text far past the limit.
func estimate(args []any) int {
	n := 0
	for _, a := range args {
		if v := reflect.ValueOf(a); v.Kind() == reflect.String {
			n += v.Len()
		} else {
			n++
		}
	}
	return n
}

// formatNumbers sums the numbers written in a printf format (widths and
// precisions).
func formatNumbers(format string) int {
	sum, cur := 0, 0
	for i := 0; i < len(format); i++ {
		if c := format[i]; c >= '0' && c <= '9' {
			cur = min(cur*10+int(c-'0'), 1<<30)
			continue
		}
		sum, cur = min(sum+cur, 1<<30), 0
	}
	return min(sum+cur, 1<<30)
}

// dateLayouts are the input forms the date function understands.
var dateLayouts = []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02"}

func formatDate(layout, s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.Format(layout), nil
		}
	}
	return "", fmt.Errorf("%q is not a date like 2026-03-01 or 2026-03-01T09:30:00Z", s)
}

func truncate(n int, s string) string {
	if n < 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
