package sender

import (
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
