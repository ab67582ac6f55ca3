package admin

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// sendVars is a recipient's "vars": a JSON object of scalars, read
// straight into the text a template sees (a string as it is, a number as
// written, true/false, null as ""), as a CSV cell would be. Decoding into
// map[string]any first (json.Number, then text) was a fifth of a
// 1,000-recipient send's CPU. Objects and arrays are refused: their names
// are kept in bad, and toAPISend reports them.
type sendVars struct {
	m   map[string]string
	bad []string
}

// UnmarshalJSON reads one object. encoding/json has already checked that
// b is one valid JSON value, so this reads it without checking again.
func (v *sendVars) UnmarshalJSON(b []byte) error {
	i := skipSpace(b, 0)
	if b[i] == 'n' { // null: no variables
		*v = sendVars{}
		return nil
	}
	if b[i] != '{' {
		return errors.New("vars must be an object")
	}
	v.m, v.bad = map[string]string{}, nil
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return nil
	}
	for {
		key, next, err := readString(b, i)
		if err != nil {
			return err
		}
		i = skipSpace(b, skipSpace(b, next)+1) // past ':'
		var val string
		switch c := b[i]; {
		case c == '"':
			val, i, err = readString(b, i)
			if err != nil {
				return err
			}
		case c == '{' || c == '[':
			i = skipValue(b, i)
			v.bad = append(v.bad, key)
			delete(v.m, key)
			i = skipSpace(b, i)
			if b[i] == '}' {
				return nil
			}
			i = skipSpace(b, i+1)
			continue
		case c == 'n':
			i += len("null")
		default: // a number, true or false: as written
			start := i
			for i < len(b) && !isDelim(b[i]) {
				i++
			}
			val = string(b[start:i])
		}
		v.m[key] = val
		i = skipSpace(b, i)
		if b[i] == '}' {
			return nil
		}
		i = skipSpace(b, i+1) // past ','
	}
}

func isDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// readString reads the JSON string starting at b[i] (a '"'); it returns
// its text and the index after its closing quote. A string without escapes
// is sliced; one with escapes is decoded by encoding/json.
func readString(b []byte, i int) (string, int, error) {
	j := i + 1
	escaped := false
	for ; b[j] != '"'; j++ {
		if b[j] == '\\' {
			escaped = true
			j++
		}
	}
	if !escaped && utf8.Valid(b[i+1:j]) {
		return string(b[i+1 : j]), j + 1, nil
	}
	var s string
	if err := json.Unmarshal(b[i:j+1], &s); err != nil {
		return "", 0, err
	}
	return s, j + 1, nil
}

// skipValue returns the index after the object or array starting at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			_, next, _ := readString(b, i)
			i = next - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return i
}
