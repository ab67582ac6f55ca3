package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dropgate/dropgate/store"
)

// Contacts (lists/<list>/ files and the list API): keys normalised like
// recipient rows, attributes typed per file or request.

// colStatus is a contact row's optional list status column.
const colStatus = "status"

// Bits of the attribute types a value can be read as.
const (
	fitsInteger = 1 << iota
	fitsNumber
	fitsBoolean
	fitsTime
	fitsAny = fitsInteger | fitsNumber | fitsBoolean | fitsTime
)

// valueFits returns the bits of the types v (trimmed, not empty) can be
// read as. Numbers are plain decimals only: no leading zeros (a "007"
// code or a "01234" postal code stays text), no '+', hex, "NaN", "Inf" or
// digit separators. It runs for every cell of a file, so it scans by hand.
func valueFits(v string) int {
	c := v[0]
	if c == '-' || c >= '0' && c <= '9' {
		fits := 0
		switch decimalForm(v) {
		case formInteger:
			if _, err := strconv.ParseInt(v, 10, 64); err == nil {
				fits |= fitsInteger
			}
			fits |= fitsNumber
		case formNumber:
			if _, err := strconv.ParseFloat(v, 64); err == nil {
				fits |= fitsNumber
			}
		}
		if len(v) >= 20 && v[4] == '-' {
			if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
				fits |= fitsTime
			}
		}
		return fits
	}
	if (c == 't' || c == 'T' || c == 'f' || c == 'F') && (strings.EqualFold(v, "true") || strings.EqualFold(v, "false")) {
		return fitsBoolean
	}
	return 0
}

// Forms of decimalForm.
const (
	formNone = iota
	formInteger
	formNumber
)

// decimalForm tells whether v is -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)?,
// and an integer when it has neither fraction nor exponent.
func decimalForm(v string) int {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || n > 1 && v[start] == '0' {
		return formNone
	}
	if i == len(v) {
		return formInteger
	}
	if v[i] == '.' {
		i++
		if digits() == 0 {
			return formNone
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if digits() == 0 {
			return formNone
		}
	}
	if i != len(v) {
		return formNone
	}
	return formNumber
}

// typeOf is the attribute type of a column whose values all fit the bits:
// the narrowest, else string.
func typeOf(fits int) string {
	switch {
	case fits&fitsInteger != 0:
		return store.FieldInteger
	case fits&fitsNumber != 0:
		return store.FieldNumber
	case fits&fitsBoolean != 0:
		return store.FieldBoolean
	case fits&fitsTime != 0:
		return store.FieldTime
	}
	return store.FieldString
}

// attrValue reads v (trimmed, not empty) as a value of typ; msg says why
// it cannot be one.
func attrValue(v, typ string) (any, string) {
	switch typ {
	case store.FieldString:
		return v, ""
	case store.FieldInteger:
		if valueFits(v)&fitsInteger != 0 {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n, ""
		}
		return nil, "a whole number like 42"
	case store.FieldNumber:
		if valueFits(v)&fitsNumber != 0 {
			f, _ := strconv.ParseFloat(v, 64)
			return f, ""
		}
		return nil, "a number like 4.2"
	case store.FieldBoolean:
		if valueFits(v)&fitsBoolean != 0 {
			return strings.EqualFold(v, "true"), ""
		}
		return nil, "true or false"
	case store.FieldTime:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, ""
		}
		return nil, "an RFC 3339 time like 2026-01-02T15:04:05Z"
	}
	return nil, "a value of type " + typ
}

// appendAttr adds v (trimmed, not empty) to ab as a value of typ and
// returns "", or says what v should be. vf is what valueFits(v) returned,
// or -1 when it was not asked. It writes what attrValue and
// store.AppendAttributes would, without an any per value.
func appendAttr(ab *store.AttrsBuilder, key []byte, v, typ string, vf int) string {
	fits := func() int {
		if vf < 0 {
			vf = valueFits(v)
		}
		return vf
	}
	switch typ {
	case store.FieldString:
		ab.String(key, v)
		return ""
	case store.FieldInteger:
		if fits()&fitsInteger != 0 {
			n, _ := strconv.ParseInt(v, 10, 64)
			ab.Int(key, n)
			return ""
		}
		return "a whole number like 42"
	case store.FieldNumber:
		if fits()&fitsNumber != 0 {
			f, _ := strconv.ParseFloat(v, 64)
			if ab.Number(key, f) {
				return ""
			}
		}
		return "a number like 4.2"
	case store.FieldBoolean:
		if fits()&fitsBoolean != 0 {
			ab.Bool(key, strings.EqualFold(v, "true"))
			return ""
		}
		return "true or false"
	case store.FieldTime:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			ab.Time(key, t)
			return ""
		}
		return "an RFC 3339 time like 2026-01-02T15:04:05Z"
	}
	return "a value of type " + typ
}

// typeMismatch is the partner's message for a value that does not fit
// its attribute's stored type.
func typeMismatch(name, v, typ, want string) string {
	return fmt.Sprintf("%q is not %s: the attribute %q holds %s values (set by the first file or request that used it); write %s, or leave the cell empty to keep the stored value",
		v, want, name, typ, want)
}

// contactKeys normalises a row's keys as recipient files do: the email
// checked and lower-cased, the phone to E.164 with the partner's region,
// the ref trimmed. bad receives each problem (column, value, message).
func contactKeys(phones *phoneNormalizer, email, phone, ref string, bad func(column, value, msg string)) (store.ContactRow, bool) {
	var r store.ContactRow
	ok := true
	if e := strings.TrimSpace(email); e != "" {
		addr, msg := e, ""
		if !plainEmail(e) {
			addr, msg = checkEmail(e)
		}
		if msg != "" {
			bad(colEmail, email, msg)
			ok = false
		}
		r.Email = strings.ToLower(addr)
	}
	if p := strings.TrimSpace(phone); p != "" {
		num, msg := phones.normalize(p)
		if msg != "" {
			bad(colPhone, phone, msg)
			ok = false
		}
		r.Phone = num
	}
	r.Ref = strings.TrimSpace(ref)
	if ok && r.Email == "" && r.Phone == "" && r.Ref == "" {
		bad(colEmail, "", "the row has no email, phone or ref; give at least one, so the contact can be found")
		ok = false
	}
	return r, ok
}

// contactStatus reads a status cell: "" keeps a member's status.
func contactStatus(v string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return "", true
	case store.Subscribed:
		return store.Subscribed, true
	case store.Unsubscribed:
		return store.Unsubscribed, true
	}
	return "", false
}

const statusMessage = "the status must be subscribed or unsubscribed (or empty, to keep a member's status and subscribe a new one)"

// decideTypes returns the type each attribute is stored with: its stored
// type when the partner has one (values that do not fit it are reported),
// else what the file's or request's values fit.
func decideTypes(inferred map[string]int, stored map[string]string) map[string]string {
	out := make(map[string]string, len(inferred))
	for name, fits := range inferred {
		if t, ok := stored[name]; ok {
			out[name] = t
			continue
		}
		out[name] = typeOf(fits)
	}
	return out
}

// plainEmail reports whether s is an address checkEmail accepts as it
// stands, for the common shape only: dot-atoms of letters, digits and
// ._%+- around one '@', with a dot in the domain. Anything else goes to
// checkEmail (net/mail), which was most of a list row's key checks.
func plainEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	return dotAtom(s[:at], "._%+-") && dotAtom(s[at+1:], ".-") && strings.IndexByte(s[at+1:], '.') > 0
}

// dotAtom reports whether s is non-empty runs of letters, digits and the
// bytes of extra other than '.', joined by single dots.
func dotAtom(s, extra string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}
