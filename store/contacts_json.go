package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Attributes are stored as one canonical JSON object: names sorted, no
// spaces, strings as varsjson.go writes them, numbers in encoding/json's
// float format, times as RFC 3339 in UTC. Two encodings of
// equal attributes are equal bytes, so an unchanged contact is recognised
// by comparing them, without decoding either. Files encode their rows
// here (AppendAttributes) at a fraction of json.Marshal's cost.

// AttrValue is one typed attribute value: int64, float64, bool,
// time.Time or string.
type AttrValue = any

// EncodeAttributes returns the canonical JSON object of attrs.
func EncodeAttributes(attrs map[string]any) (json.RawMessage, error) {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	values := make([]any, len(names))
	for i, n := range names {
		values[i] = attrs[n]
	}
	return AppendAttributes(nil, names, values)
}

// AppendAttributes appends the canonical JSON object of names (sorted,
// distinct) and their values to b. A nil value leaves its name out.
func AppendAttributes(b []byte, names []string, values []any) ([]byte, error) {
	b = append(b, '{')
	first := true
	for i, n := range names {
		v := values[i]
		if v == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, n)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, n, v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, name string, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case time.Time:
		b = append(b, '"')
		b = v.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("attribute %q: %v is not a number that can be stored", name, v)
		}
		return appendFloat(b, v), nil
	case json.Number:
		return append(b, v...), nil
	}
	return nil, fmt.Errorf("attribute %q: values of type %T cannot be stored", name, v)
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// mergeRaw lays the canonical object over onto the canonical object
// stored and returns the canonical result. Values are moved as raw JSON:
// nothing is decoded to Go values and encoded again.
func mergeRaw(stored, over json.RawMessage) (json.RawMessage, error) {
	if len(over) == 0 || string(over) == "{}" {
		if len(stored) == 0 {
			return json.RawMessage("{}"), nil
		}
		return stored, nil
	}
	if len(stored) == 0 || string(stored) == "{}" || bytes.Equal(stored, over) {
		return over, nil
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal(stored, &merged); err != nil {
		return nil, fmt.Errorf("cannot read stored attributes: %w", err)
	}
	var add map[string]json.RawMessage
	if err := json.Unmarshal(over, &add); err != nil {
		return nil, fmt.Errorf("cannot read attributes: %w", err)
	}
	for n, v := range add {
		merged[n] = v
	}
	names := make([]string, 0, len(merged))
	size := 2
	for n, v := range merged {
		names = append(names, n)
		size += len(n) + len(v) + 4
	}
	sort.Strings(names)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
		b = append(b, ':')
		b = append(b, merged[n]...)
	}
	return append(b, '}'), nil
}

// attrMember is one name and raw value of a canonical attributes object.
type attrMember struct {
	name, value []byte // name as written, without quotes
}

// splitCanonical splits a canonical object (contacts_json.go's encoding)
// into its members, in order, appending to out. ok is false for anything
// else (a name with an escape, spaces): the caller then decodes.
func splitCanonical(b []byte, out []attrMember) ([]attrMember, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return out, false
	}
	i, end := 1, len(b)-1
	for i < end {
		if b[i] != '"' {
			return out, false
		}
		j := i + 1
		for j < end && b[j] != '"' {
			if b[j] == '\\' {
				return out, false
			}
			j++
		}
		if j+1 >= end || b[j+1] != ':' {
			return out, false
		}
		name := b[i+1 : j]
		k := j + 2
		v := k
		if k < end && b[k] == '"' {
			k++
			for k < end && b[k] != '"' {
				if b[k] == '\\' {
					k++
				}
				k++
			}
			k++
		} else {
			for k < end && b[k] != ',' {
				if b[k] == ' ' || b[k] == '{' || b[k] == '[' {
					return out, false
				}
				k++
			}
		}
		if k > end || v == k {
			return out, false
		}
		out = append(out, attrMember{name, b[v:k]})
		if k < end {
			if b[k] != ',' {
				return out, false
			}
			k++
		}
		i = k
	}
	return out, true
}

// mergeCanonical is mergeRaw for two canonical objects, by merging their
// sorted members without decoding; scratch is reused between calls. ok is
// false when either is not canonical.
func mergeCanonical(dst, stored, over []byte, scratch *[2][]attrMember) ([]byte, bool) {
	a, ok := splitCanonical(stored, scratch[0][:0])
	scratch[0] = a
	if !ok {
		return nil, false
	}
	b, ok := splitCanonical(over, scratch[1][:0])
	scratch[1] = b
	if !ok {
		return nil, false
	}
	dst = append(dst[:0], '{')
	first := true
	put := func(m attrMember) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, m.name...)
		dst = append(dst, '"', ':')
		dst = append(dst, m.value...)
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b):
			put(a[i])
			i++
		case i == len(a):
			put(b[j])
			j++
		default:
			switch c := bytes.Compare(a[i].name, b[j].name); {
			case c < 0:
				put(a[i])
				i++
			case c > 0:
				put(b[j])
				j++
			default:
				put(b[j])
				i++
				j++
			}
		}
	}
	return append(dst, '}'), true
}

// AttrsBuilder writes one canonical attributes object value by value, the
// same bytes AppendAttributes writes, for a reader that has each value as
// text of a known type (a list file): no value is boxed in an any, and
// each name's quoted form is made once per file (AttrKey), not per row.
// Values must be added in the order of their names, each name once.
type AttrsBuilder struct {
	b []byte
}

// AttrKey is a name as an AttrsBuilder writes it: quoted, with its colon.
func AttrKey(name string) []byte {
	return append(appendJSONString(nil, name), ':')
}

// Reset starts a new object, reusing the builder's memory.
func (a *AttrsBuilder) Reset() { a.b = append(a.b[:0], '{') }

func (a *AttrsBuilder) key(key []byte) {
	if len(a.b) > 1 {
		a.b = append(a.b, ',')
	}
	a.b = append(a.b, key...)
}

// String adds a string value.
func (a *AttrsBuilder) String(key []byte, v string) {
	a.key(key)
	a.b = appendJSONString(a.b, v)
}

// Int adds an integer value.
func (a *AttrsBuilder) Int(key []byte, v int64) {
	a.key(key)
	a.b = strconv.AppendInt(a.b, v, 10)
}

// Number adds a number value; NaN and the infinities cannot be stored.
func (a *AttrsBuilder) Number(key []byte, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	a.key(key)
	a.b = appendFloat(a.b, v)
	return true
}

// Bool adds a boolean value.
func (a *AttrsBuilder) Bool(key []byte, v bool) {
	a.key(key)
	a.b = strconv.AppendBool(a.b, v)
}

// Time adds a time value, as RFC 3339 in UTC.
func (a *AttrsBuilder) Time(key []byte, v time.Time) {
	a.key(key)
	a.b = append(a.b, '"')
	a.b = v.UTC().AppendFormat(a.b, time.RFC3339Nano)
	a.b = append(a.b, '"')
}

// Empty reports whether no value was added since Reset.
func (a *AttrsBuilder) Empty() bool { return len(a.b) <= 1 }

// Bytes closes the object and returns a copy of it, the caller's to keep.
func (a *AttrsBuilder) Bytes() []byte {
	a.b = append(a.b, '}')
	out := append([]byte(nil), a.b...)
	a.b = a.b[:len(a.b)-1]
	return out
}
