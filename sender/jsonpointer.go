package sender

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// jsonPointer looks up an RFC 6901 JSON pointer ("/data/0/id") in a value
// decoded by encoding/json (maps, slices, strings, float64s, bools, nil).
// The empty pointer is the whole document.
func jsonPointer(doc any, ptr string) (any, error) {
	if ptr == "" {
		return doc, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, fmt.Errorf("JSON pointer %q must start with /", ptr)
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		// ~1 first, then ~0, as the RFC requires: "~01" is "~1", not "/".
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, fmt.Errorf("JSON pointer %q: no member %q", ptr, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) || (len(tok) > 1 && tok[0] == '0') {
				return nil, fmt.Errorf("JSON pointer %q: no element %q in an array of %d", ptr, tok, len(v))
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("JSON pointer %q: %q is inside a %s", ptr, tok, jsonKind(cur))
		}
	}
	return cur, nil
}

// jsonScalar renders a looked-up value as a provider id: strings as they
// are, numbers without exponent, anything else is not an id.
func jsonScalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", errors.New("the value is a " + jsonKind(v) + ", not a string or number")
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// jsonPointerRaw looks up ptr like jsonPointer, in doc itself rather than
// in its decoded value, and returns the raw JSON of what it points at; doc
// must be valid JSON (json.Valid). Reading a provider's id this way skips
// decoding every other member of the answer into maps and interfaces,
// which cost about 4 µs a message. A member that appears twice counts
// last, as json.Unmarshal has it.
func jsonPointerRaw(doc []byte, ptr string) ([]byte, bool) {
	i := skipSpace(doc, 0)
	if ptr != "" {
		if ptr[0] != '/' {
			return nil, false
		}
		for _, tok := range strings.Split(ptr[1:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			var ok bool
			if i, ok = jsonChild(doc, i, tok); !ok {
				return nil, false
			}
		}
	}
	return doc[i:skipValue(doc, i)], true
}

// jsonChild returns where the member or element tok of the object or
// array starting at doc[i] starts.
func jsonChild(doc []byte, i int, tok string) (int, bool) {
	switch doc[i] {
	case '{':
		found := -1
		for i = skipSpace(doc, i+1); doc[i] != '}'; {
			ke := skipValue(doc, i)
			key := doc[i:ke]
			vs := skipSpace(doc, skipSpace(doc, ke)+1) // past the colon
			if jsonKeyIs(key, tok) {
				found = vs
			}
			i = skipSpace(doc, skipValue(doc, vs))
			if doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
		return found, found >= 0
	case '[':
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || (len(tok) > 1 && tok[0] == '0') {
			return 0, false
		}
		for i = skipSpace(doc, i+1); doc[i] != ']'; n-- {
			if n == 0 {
				return i, true
			}
			i = skipSpace(doc, skipValue(doc, i))
			if doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
	}
	return 0, false
}

// jsonKeyIs reports whether the quoted key is tok once unescaped.
func jsonKeyIs(quoted []byte, tok string) bool {
	plain := true
	for _, c := range quoted {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(quoted[1:len(quoted)-1]) == tok
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == tok
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at
// doc[i].
func skipValue(doc []byte, i int) int {
	depth := 0
	for ; i < len(doc); i++ {
		switch c := doc[i]; c {
		case '"':
			for i++; doc[i] != '"'; i++ {
				if doc[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
