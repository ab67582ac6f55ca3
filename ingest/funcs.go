package ingest

import (
	"fmt"
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
func templateFuncs() template.FuncMap {
	titler := cases.Title(language.Und)
	return template.FuncMap{
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"title": func(s string) string { return titler.String(s) },
		"trim":  strings.TrimSpace,
		"default": func(def, s string) string {
			if strings.TrimSpace(s) == "" {
				return def
			}
			return s
		},
		"date":     formatDate,
		"truncate": truncate,
		"replace":  func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	}
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
