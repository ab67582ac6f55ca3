package store

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// varsJSON encodes a message's variables as a JSON object with sorted keys,
// like json.Marshal but without its reflection, which the insert goroutine
// of a large file otherwise spends a good part of its time in. The keys
// are sorted in an array on the stack (up to 16 of them) and the object is
// built where the returned string lives: one allocation for a row's usual
// few variables instead of three (BenchmarkVarsJSON).
func varsJSON(vars map[string]string) string {
	var stack [16]string
	keys := stack[:0]
	size := 2
	for k, v := range vars {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	buf := make([]byte, 0, 64)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		buf = appendJSONString(buf[:0], k)
		buf = append(buf, ':')
		buf = appendJSONString(buf, vars[k])
		b.Write(buf)
	}
	b.WriteByte('}')
	return b.String()
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028
// and U+2029 escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
