package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dropgate/dropgate/store"
)

// attrDecoder turns a contact's stored attributes (a flat JSON object, as
// store.PutContact and list drops write them) into the values a segment
// sees (store.AttributeValues's types) and the text a template sees (each
// value as written in the JSON: numbers as stored, true/false, strings and
// times as they are). A list send decodes every member it reads; with
// encoding/json that was most of a dry run's time, so a flat object of
// scalars without escapes is scanned here, and anything else (escapes,
// nested values) goes to store.AttributeValues.
// TestAttrDecoderAgreesWithAttributeValues holds the two equal.
type attrDecoder struct {
	fields map[string]string    // the partner's attribute types
	names  map[string]*attrName // interned names, with what is wanted of them
	// wantValues and wantTexts are the names whose typed value (for the
	// segment) and text (for the template) are wanted; nil means all.
	wantValues, wantTexts map[string]bool
	gen                   int // the current decode, to find a name given twice
	// order is the names of the last object decoded, by position: the
	// store writes every contact's names in the same (sorted) order, so
	// the name at a position is checked with one comparison instead of a
	// map lookup.
	order []*attrName
}

// attrName is an attribute name met in the stored objects.
type attrName struct {
	name        string
	typ         string // the partner's type of the attribute ("" unknown)
	value, text bool
	seen        int // the decode that last met it (attrDecoder.gen)
	// The last value decoded under this name: members of a list share
	// many values (a city, a date, a count), and a value met again is
	// taken from here without a string, a time.Parse or a boxing.
	last lastValue
}

// lastValue is one decoded value with the JSON it was decoded from.
type lastValue struct {
	kind  byte // '"' a string, '0' a number, 0 none yet
	raw   []byte
	value any
	text  string
}

// memo returns the value and text last decoded from raw of this kind.
func (n *attrName) memo(kind byte, raw []byte) (*lastValue, bool) {
	return &n.last, n.last.kind == kind && bytes.Equal(n.last.raw, raw)
}

// remember records the value and text decoded from raw.
func (l *lastValue) remember(kind byte, raw []byte, value any, text string) {
	l.kind, l.raw, l.value, l.text = kind, append(l.raw[:0], raw...), value, text
}

func newAttrDecoder(fields map[string]string, wantValues, wantTexts map[string]bool) *attrDecoder {
	return &attrDecoder{fields: fields, names: map[string]*attrName{}, wantValues: wantValues, wantTexts: wantTexts}
}

// clone returns a decoder for another goroutine (the interned names are
// not shared).
func (d *attrDecoder) clone() *attrDecoder {
	return newAttrDecoder(d.fields, d.wantValues, d.wantTexts)
}

// name returns the interned entry of an attribute name.
func (d *attrDecoder) name(key []byte) *attrName {
	if n, ok := d.names[string(key)]; ok {
		return n
	}
	s := string(key)
	n := &attrName{name: s, typ: d.fields[s], value: d.wantValues == nil || d.wantValues[s], text: d.wantTexts == nil || d.wantTexts[s]}
	d.names[s] = n
	return n
}

// decode fills values and text (both cleared first) from raw, with the
// wanted names only.
func (d *attrDecoder) decode(raw []byte, values map[string]any, text map[string]string) error {
	clear(values)
	clear(text)
	if d.scan(raw, values, text) {
		return nil
	}
	clear(values)
	clear(text)
	return d.slow(raw, values, text)
}

// slow decodes with encoding/json (store.AttributeValues).
func (d *attrDecoder) slow(raw []byte, values map[string]any, text map[string]string) error {
	vals, err := store.AttributeValues(raw, d.fields)
	if err != nil {
		return err
	}
	var texts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &texts); err != nil {
		return err
	}
	for name, v := range vals {
		n := d.name([]byte(name))
		if n.value {
			values[name] = v
		}
		t := texts[name]
		var s string
		switch {
		case !n.text || bytes.Equal(t, []byte("null")):
		case len(t) > 0 && t[0] == '"' && json.Unmarshal(t, &s) == nil:
			text[name] = s
		default:
			text[name] = string(t)
		}
	}
	return nil
}

// scan is the fast path; false means "not a plain flat object, use slow".
func (d *attrDecoder) scan(b []byte, values map[string]any, text map[string]string) bool {
	d.gen++
	k := 0 // the position of the next name
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		var n *attrName
		if k < len(d.order) && d.order[k].name == string(key) {
			n = d.order[k]
		} else {
			n = d.name(key)
			if k < len(d.order) {
				d.order[k] = n
			} else {
				d.order = append(d.order, n)
			}
		}
		k++
		name := n.name
		if n.seen == d.gen {
			return false // a name given twice: encoding/json keeps the last; leave that to it
		}
		n.seen = d.gen
		switch c := b[i]; {
		case c == '"':
			s, next, ok := plainString(b, i)
			if !ok {
				return false
			}
			i = next
			if !n.value && !n.text {
				break
			}
			l, ok := n.memo('"', s)
			if !ok {
				str := string(s)
				var v any = str
				if n.typ == store.FieldTime {
					if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
						v = t
					}
				}
				l.remember('"', s, v, str)
			}
			if n.text {
				text[name] = l.text
			}
			if n.value {
				values[name] = l.value
			}
		case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
			if n.value {
				values[name] = true
			}
			if n.text {
				text[name] = "true"
			}
			i += 4
		case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
			if n.value {
				values[name] = false
			}
			if n.text {
				text[name] = "false"
			}
			i += 5
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
				j++
			}
			num := b[i:j]
			i = j
			if !n.value && !n.text {
				break
			}
			l, ok := n.memo('0', num)
			if !ok {
				var v any
				if n.typ == store.FieldInteger {
					if iv, err := strconv.ParseInt(string(num), 10, 64); err == nil {
						v = iv
					}
				}
				if v == nil {
					f, err := strconv.ParseFloat(string(num), 64)
					if err != nil && n.value {
						return false
					}
					v = f
				}
				l.remember('0', num, v, string(num))
			}
			if n.text {
				text[name] = l.text
			}
			if n.value {
				values[name] = l.value
			}
		default:
			return false // null, objects, arrays
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// plainString returns the content of the JSON string at b[i], when it has
// no escapes and no control characters, and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return nil, 0, false // encoding/json would replace the bad bytes
			}
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
