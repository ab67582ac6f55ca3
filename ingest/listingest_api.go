package ingest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dropgate/dropgate/store"
)

// ContactEntry is one contact of an API request, its values as text, as a
// file's cells are: attributes are typed per request like a file's
// columns, and an empty value leaves the stored attribute as it is.
type ContactEntry struct {
	Email, Phone, Ref, Status string
	Attributes                map[string]string
}

// PutContacts checks entries as the rows of a list file are checked and,
// when every one is good, upserts them into the partner's list in one
// transaction. Problems name the entry ("contacts[3].email",
// "contacts[0].attributes.orders"); with any, nothing is stored.
func (in *Ingester) PutContacts(ctx context.Context, partner, list string, entries []ContactEntry) (store.ListCounts, []Problem, error) {
	p := in.partners[partner]
	if p == nil {
		return store.ListCounts{}, nil, fmt.Errorf("%w %q", ErrUnknownPartner, partner)
	}
	stored, err := in.st.ContactFields(ctx, partner)
	if err != nil {
		return store.ListCounts{}, nil, err
	}
	var problems []Problem
	field := func(i int, column string) string {
		if column == colEmail || column == colPhone || column == colRef || column == colStatus {
			return fmt.Sprintf("contacts[%d].%s", i, column)
		}
		return fmt.Sprintf("contacts[%d].attributes.%s", i, column)
	}
	// The request's attribute names as a file's header would have them,
	// and what their values fit.
	fits := map[string]int{}
	attrs := make([]map[string]string, len(entries))
	for i, e := range entries {
		attrs[i] = make(map[string]string, len(e.Attributes))
		for raw, v := range e.Attributes {
			name := strings.ToLower(strings.TrimSpace(raw))
			switch name {
			case "", colEmail, colPhone, colRef, colStatus:
				problems = append(problems, Problem{Field: field(i, raw), Value: raw,
					Message: "an attribute needs a name other than email, phone, ref and status (give those as the contact's own fields)"})
				continue
			}
			attrs[i][name] = v
			if v = strings.TrimSpace(v); v != "" {
				f, ok := fits[name]
				if !ok {
					f = fitsAny
				}
				fits[name] = f & valueFits(v)
			}
		}
	}
	types := decideTypes(fits, stored)
	phones := newPhoneNormalizer(p.cfg.Region)
	rows := make([]store.ContactRow, 0, len(entries))
	var buf []byte
	for i, e := range entries {
		bad := func(column, value, msg string) {
			problems = append(problems, Problem{Field: field(i, column), Value: value, Message: msg})
		}
		row, ok := contactKeys(phones, e.Email, e.Phone, e.Ref, bad)
		if st, valid := contactStatus(e.Status); valid {
			row.Status = st
		} else {
			bad(colStatus, e.Status, statusMessage)
			ok = false
		}
		names := make([]string, 0, len(attrs[i]))
		for n := range attrs[i] {
			names = append(names, n)
		}
		sort.Strings(names)
		values := make([]any, len(names))
		for j, n := range names {
			v := strings.TrimSpace(attrs[i][n])
			if v == "" {
				continue
			}
			x, want := attrValue(v, types[n])
			if want != "" {
				bad(n, v, typeMismatch(n, v, types[n], want))
				ok = false
				continue
			}
			values[j] = x
		}
		if !ok {
			continue
		}
		if buf, err = store.AppendAttributes(buf[:0], names, values); err != nil {
			bad("", "", err.Error())
			continue
		}
		if len(buf) > 2 {
			row.Attrs = append([]byte(nil), buf...)
		}
		row.Line = i
		rows = append(rows, row)
	}
	if len(problems) > 0 {
		return store.ListCounts{}, problems, nil
	}
	load, err := in.st.BeginListLoad(ctx, partner, list, store.ListLoadOptions{Fields: types}, false)
	if err != nil {
		return store.ListCounts{}, nil, err
	}
	defer load.Abort()
	for _, r := range rows {
		if err := load.Add(r); err != nil {
			return store.ListCounts{}, nil, err
		}
	}
	_, conflicts, err := load.Finish()
	if err != nil {
		return store.ListCounts{}, nil, err
	}
	for _, c := range conflicts {
		problems = append(problems, Problem{Field: field(c.Line, c.Column), Value: c.Value, Message: c.Message})
	}
	if len(problems) > 0 {
		return store.ListCounts{}, problems, nil
	}
	counts, err := load.Commit(0, len(rows))
	return counts, nil, err
}

// ContactKey returns the stored form of a contact key given to the API:
// an email lower-cased, a phone in E.164 with the partner's region, a ref
// trimmed. msg says why the value cannot be one.
func (in *Ingester) ContactKey(partner, column, value string) (key, msg string, err error) {
	p := in.partners[partner]
	if p == nil {
		return "", "", fmt.Errorf("%w %q", ErrUnknownPartner, partner)
	}
	var row store.ContactRow
	var problem string
	bad := func(_, _, m string) { problem = m }
	switch column {
	case colEmail:
		row, _ = contactKeys(nil, value, "", "", bad)
		key = row.Email
	case colPhone:
		row, _ = contactKeys(newPhoneNormalizer(p.cfg.Region), "", value, "", bad)
		key = row.Phone
	default:
		key = strings.TrimSpace(value)
	}
	return key, problem, nil
}
