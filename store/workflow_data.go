package store

import (
	"encoding/json"
	"strings"
)

// runData decodes a run's data, a JSON object of text values as varsJSON
// (or json.Marshal) wrote it. Plain values (no escape) are read directly;
// anything else goes to encoding/json. Firing a run decoded its data with
// json.Unmarshal at a third of reading the run (workflow/BENCHMARKS.md).
func runData(s string) map[string]string {
	if s == "{}" || s == "" {
		return nil
	}
	if m, ok := plainObject(s); ok {
		return m
	}
	var m map[string]string
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

// plainObject parses {"k":"v",...} whose strings hold no backslash and no
// whitespace between tokens; ok is false for anything else.
func plainObject(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	m := make(map[string]string, strings.Count(s, `":"`))
	rest := s[1 : len(s)-1]
	for rest != "" {
		k, r, ok := plainString(rest)
		if !ok || r == "" || r[0] != ':' {
			return nil, false
		}
		v, r, ok := plainString(r[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if r == "" {
			break
		}
		if r[0] != ',' || len(r) == 1 {
			return nil, false
		}
		rest = r[1:]
	}
	return m, true
}

// plainString reads a quoted string without escapes at the start of s.
func plainString(s string) (v, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}
