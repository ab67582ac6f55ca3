package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// decodeEvents reads the body of POST /api/v1/events as decodeJSON does.
// encoding/json (reflection, a map per event's data, a scan of the whole
// body before decoding it) was a tenth of an event's CPU in batches of
// 1,000 (workflow/BENCHMARKS.md, session 7), so the usual shape is read
// by eventsParser; anything it does not take exactly as written (escapes,
// nulls, keys in another case, unknown or repeated keys, nested data
// values, invalid JSON) goes to encoding/json as before, which reads it,
// or words the error. FuzzEventsDecodeAgreesWithEncodingJSON holds the two
// to the same result.
func (s *Server) decodeEvents(w http.ResponseWriter, r *http.Request, req *eventsRequest) error {
	if !isJSON(r) {
		return s.decodeJSON(w, r, req, "events") // words the error
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if parseEvents(raw, req) {
		return nil
	}
	*req = eventsRequest{}
	return decodeEventsJSON(raw, req)
}

// decodeEventsJSON is decodeJSON's decoding of a body already read.
func decodeEventsJSON(raw []byte, req *eventsRequest) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(req); err != nil {
		return errBadRequest("the body is not a valid events request: " + err.Error())
	}
	return nil
}

// parseEvents reads b into req when it is an events request in the usual
// shape, and reports whether it did; on false req is to be read again.
func parseEvents(b []byte, req *eventsRequest) bool {
	p := eventsParser{b: b}
	if !p.object(func(key string) bool {
		switch key {
		case "partner":
			return p.str(&req.Partner)
		case "events":
			return p.events(&req.Events)
		}
		return p.entryField(&req.eventEntry, key)
	}) {
		return false
	}
	p.space()
	return p.i == len(p.b) // trailing text: encoding/json decides
}

// eventsParser reads JSON strictly: any byte it does not expect makes it
// give up (false), never guess.
type eventsParser struct {
	b []byte
	i int
}

func (p *eventsParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// next skips white space and reports whether the next byte is c, taking
// it if so.
func (p *eventsParser) next(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object, calling field for each key with the parser at
// its value; a key seen twice, or more than 16 keys, give up
// (encoding/json's last-wins rules for nested values are its own).
func (p *eventsParser) object(field func(key string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	var seenArr [16]string
	seen := seenArr[:0]
	for {
		var key string
		if !p.str(&key) || !p.next(':') || len(seen) == len(seenArr) { // many keys: encoding/json
			return false
		}
		for _, k := range seen {
			if k == key {
				return false
			}
		}
		seen = append(seen, key)
		if !field(key) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// str reads a string without escapes into v.
func (p *eventsParser) str(v *string) bool {
	if !p.next('"') {
		return false
	}
	start, ascii := p.i, true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			if !ascii && !utf8.Valid(s) { // encoding/json would replace the bytes
				return false
			}
			*v = string(s)
			p.i++
			return true
		case c == '\\' || c < 0x20:
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	return false
}

// entryField reads one field of an event.
func (p *eventsParser) entryField(e *eventEntry, key string) bool {
	switch key {
	case "id":
		return p.str(&e.ID)
	case "event":
		return p.str(&e.Event)
	case "email":
		return p.str(&e.Email)
	case "phone":
		return p.str(&e.Phone)
	case "ref":
		return p.str(&e.Ref)
	case "key":
		return p.str(&e.Key)
	case "occurred_at":
		return p.str(&e.OccurredAt)
	case "data":
		return p.data(&e.Data)
	}
	return false
}

// events reads the list of events.
func (p *eventsParser) events(v *[]eventEntry) bool {
	if !p.next('[') {
		return false
	}
	// Sized by a count of "event" keys, not grown: an entry is ~160
	// bytes, and growing to 1,000 of them was a tenth of a batch's garbage.
	out := entryBufs.Get(max(bytes.Count(p.b[p.i:], []byte(`"event"`)), 1))[:0]
	if !p.next(']') {
		for {
			out = append(out, eventEntry{})
			e := &out[len(out)-1]
			if !p.object(func(key string) bool { return p.entryField(e, key) }) {
				return false
			}
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*v = out
	return true
}

// data reads an event's data as sendVars.UnmarshalJSON does: a string as
// it is, a number or true/false as written, null as "". An object or
// array value gives up (sendVars reports it).
func (p *eventsParser) data(v *sendVars) bool {
	m := map[string]string{}
	if !p.object(func(key string) bool {
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		var val string
		switch c := p.b[p.i]; {
		case c == '"':
			if !p.str(&val) {
				return false
			}
		case c == 't' || c == 'f' || c == 'n':
			lit := "true"
			if c == 'f' {
				lit = "false"
			} else if c == 'n' {
				lit = "null"
			}
			if !bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
				return false
			}
			p.i += len(lit)
			if c != 'n' {
				val = lit
			}
		default:
			start := p.i
			if !p.number() {
				return false
			}
			val = string(p.b[start:p.i])
		}
		m[key] = val
		return true
	}) {
		return false
	}
	*v = sendVars{m: m}
	return true
}

// number reads a JSON number: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?
func (p *eventsParser) number() bool {
	b := p.b
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return false
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (p *eventsParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
