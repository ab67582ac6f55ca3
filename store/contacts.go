package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// List membership statuses.
const (
	Subscribed   = "subscribed"
	Unsubscribed = "unsubscribed"
)

// Attribute types of contact fields.
const (
	FieldInteger = "integer"
	FieldNumber  = "number"
	FieldBoolean = "boolean"
	FieldTime    = "time"
	FieldString  = "string"
)

// ErrContactConflict is returned when the keys given for one contact
// (email, phone, ref) belong to two different stored contacts.
var ErrContactConflict = errors.New("the email, phone and ref given belong to different contacts")

// List is a named subscriber list of a partner.
type List struct {
	ID        int64     `json:"id"`
	Partner   string    `json:"partner"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Contact is a person a partner may message, found by any of its keys.
// Empty keys are absent (stored as NULL).
type Contact struct {
	ID         int64           `json:"id"`
	Partner    string          `json:"partner"`
	Email      string          `json:"email,omitempty"`
	Phone      string          `json:"phone,omitempty"`
	Ref        string          `json:"ref,omitempty"`
	Attributes json.RawMessage `json:"attributes"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// ContactInput is one contact to insert or update in a list. Keys must be
// normalised as stored (lower-case email, E.164 phone). Attributes hold
// typed values (int64, float64, bool, time.Time, string); a name absent
// from the map keeps its stored value. Status "" keeps a member's status
// and subscribes a new member.
type ContactInput struct {
	Email, Phone, Ref string
	Attributes        map[string]any
	Status            string
}

// Upsert outcomes.
const (
	ContactInserted  = "inserted"
	ContactUpdated   = "updated"
	ContactUnchanged = "unchanged"
)

// FieldTypeError is a value whose type does not fit the type its attribute
// name already has for the partner.
type FieldTypeError struct {
	Name, Want, Got string
}

func (e *FieldTypeError) Error() string {
	return fmt.Sprintf("attribute %q holds %s values, not %s", e.Name, e.Want, e.Got)
}

// FieldType is the attribute type of a typed value, or "" when v is not
// one of the attribute value types.
func FieldType(v any) string {
	switch v.(type) {
	case int64, int:
		return FieldInteger
	case float64:
		return FieldNumber
	case bool:
		return FieldBoolean
	case time.Time:
		return FieldTime
	case string:
		return FieldString
	}
	return ""
}

// FieldFits reports whether a value of type got may be stored under an
// attribute of type want: the same type, or an integer as a number.
func FieldFits(want, got string) bool {
	return want == got || (want == FieldNumber && got == FieldInteger)
}

// EnsureList returns the partner's list of that name, creating it.
func (s *Store) EnsureList(ctx context.Context, partner, name string) (List, error) {
	l := List{Partner: partner, Name: name}
	var created int64
	err := s.writer.QueryRowContext(ctx, `
		INSERT INTO lists (partner, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (partner, name) DO UPDATE SET name = excluded.name
		RETURNING id, created_at`, partner, name, ms(time.Now())).Scan(&l.ID, &created)
	if err != nil {
		return List{}, fmt.Errorf("cannot create list %q: %w", name, err)
	}
	l.CreatedAt = fromMS(created)
	return l, nil
}

// ListByName returns the partner's list of that name, or ErrNotFound.
func (s *Store) ListByName(ctx context.Context, partner, name string) (List, error) {
	l := List{Partner: partner, Name: name}
	var created int64
	err := s.reader.QueryRowContext(ctx, `SELECT id, created_at FROM lists WHERE partner = ? AND name = ?`,
		partner, name).Scan(&l.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return List{}, fmt.Errorf("list %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return List{}, fmt.Errorf("cannot read list %q: %w", name, err)
	}
	l.CreatedAt = fromMS(created)
	return l, nil
}

// ContactFields returns the partner's attribute types by name.
func (s *Store) ContactFields(ctx context.Context, partner string) (map[string]string, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT name, type FROM contact_fields WHERE partner = ?`, partner)
	if err != nil {
		return nil, fmt.Errorf("cannot read contact fields: %w", err)
	}
	defer rows.Close()
	fields := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("cannot read contact fields: %w", err)
		}
		fields[name] = typ
	}
	return fields, rows.Err()
}

// PutContact inserts or updates one contact and its membership of list, in
// one transaction. It is the simple path for single contacts (API, tests,
// unsubscribes); files use a bulk path.
func (s *Store) PutContact(ctx context.Context, list List, in ContactInput) (Contact, string, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Contact{}, "", fmt.Errorf("cannot begin: %w", err)
	}
	defer tx.Rollback()
	if s.pg {
		if err := lockPartnerContactsPG(ctx, tx, list.Partner); err != nil {
			return Contact{}, "", err
		}
	}
	c, outcome, err := putContactTx(ctx, tx, list, in, time.Now())
	if err != nil {
		return Contact{}, "", err
	}
	if err := tx.Commit(); err != nil {
		return Contact{}, "", fmt.Errorf("cannot store contact: %w", err)
	}
	return c, outcome, nil
}

func putContactTx(ctx context.Context, tx *sql.Tx, list List, in ContactInput, now time.Time) (Contact, string, error) {
	if in.Email == "" && in.Phone == "" && in.Ref == "" {
		return Contact{}, "", errors.New("a contact needs an email, a phone or a ref")
	}
	if err := checkFieldsTx(ctx, tx, list.Partner, in.Attributes); err != nil {
		return Contact{}, "", err
	}
	found, err := findContactTx(ctx, tx, list.Partner, in)
	if err != nil {
		return Contact{}, "", err
	}
	outcome := ContactUnchanged
	c := found
	if found.ID == 0 {
		attrs, err := mergeAttributes(nil, in.Attributes)
		if err != nil {
			return Contact{}, "", err
		}
		c = Contact{Partner: list.Partner, Email: in.Email, Phone: in.Phone, Ref: in.Ref, Attributes: attrs, CreatedAt: now, UpdatedAt: now}
		err = tx.QueryRowContext(ctx, `
			INSERT INTO contacts (partner, email, phone, ref, attributes, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			c.Partner, nullString(c.Email), nullString(c.Phone), nullString(c.Ref), string(attrs), ms(now), ms(now)).Scan(&c.ID)
		if err != nil {
			return Contact{}, "", fmt.Errorf("cannot insert contact: %w", err)
		}
		if err := markContactPartnerTx(ctx, tx, c.Partner); err != nil { // lists_load.go
			return Contact{}, "", err
		}
		outcome = ContactInserted
	} else {
		attrs, err := mergeAttributes(found.Attributes, in.Attributes)
		if err != nil {
			return Contact{}, "", err
		}
		c.Email, c.Phone, c.Ref = orKeep(in.Email, found.Email), orKeep(in.Phone, found.Phone), orKeep(in.Ref, found.Ref)
		c.Attributes = attrs
		if c.Email != found.Email || c.Phone != found.Phone || c.Ref != found.Ref || string(attrs) != string(found.Attributes) {
			c.UpdatedAt = now
			_, err = tx.ExecContext(ctx, `UPDATE contacts SET email = ?, phone = ?, ref = ?, attributes = ?, updated_at = ? WHERE id = ?`,
				nullString(c.Email), nullString(c.Phone), nullString(c.Ref), string(attrs), ms(now), c.ID)
			if err != nil {
				return Contact{}, "", fmt.Errorf("cannot update contact %d: %w", c.ID, err)
			}
			outcome = ContactUpdated
		}
	}
	changed, err := putMemberTx(ctx, tx, list.ID, c.ID, in.Status, now)
	if err != nil {
		return Contact{}, "", err
	}
	if changed && outcome == ContactUnchanged {
		outcome = ContactUpdated
	}
	return c, outcome, nil
}

// putMemberTx sets the contact's status in the list: status "" subscribes
// a new member and leaves an existing one as it is. It reports whether
// anything changed.
func putMemberTx(ctx context.Context, tx *sql.Tx, listID, contactID int64, status string, now time.Time) (bool, error) {
	// A member of a member range gets its own row first (lists_ranges.go).
	if _, err := cutRangesTx(ctx, tx, listID, []int64{contactID}, true); err != nil {
		return false, err
	}
	var res sql.Result
	var err error
	if status == "" {
		res, err = tx.ExecContext(ctx, `INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (?, ?, 'subscribed', ?)
			ON CONFLICT (list_id, contact_id) DO NOTHING`, listID, contactID, ms(now))
	} else {
		res, err = tx.ExecContext(ctx, `INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
			WHERE list_members.status <> excluded.status`, listID, contactID, status, ms(now))
	}
	if err != nil {
		return false, fmt.Errorf("cannot store list membership: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// findContactTx returns the one stored contact that any of in's keys names
// (ID 0 when none does), or ErrContactConflict when they name two.
func findContactTx(ctx context.Context, tx *sql.Tx, partner string, in ContactInput) (Contact, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT id, email, phone, ref, attributes, created_at, updated_at FROM contacts
		WHERE partner = ?1 AND (email = ?2 OR phone = ?3 OR ref = ?4)`,
		partner, nullString(in.Email), nullString(in.Phone), nullString(in.Ref))
	if err != nil {
		return Contact{}, fmt.Errorf("cannot look up contact: %w", err)
	}
	defer rows.Close()
	var c Contact
	for rows.Next() {
		var got Contact
		var email, phone, ref sql.NullString
		var attrs string
		var created, updated int64
		if err := rows.Scan(&got.ID, &email, &phone, &ref, &attrs, &created, &updated); err != nil {
			return Contact{}, fmt.Errorf("cannot look up contact: %w", err)
		}
		if c.ID != 0 && c.ID != got.ID {
			return Contact{}, ErrContactConflict
		}
		got.Partner, got.Email, got.Phone, got.Ref = partner, email.String, phone.String, ref.String
		got.Attributes, got.CreatedAt, got.UpdatedAt = json.RawMessage(attrs), fromMS(created), fromMS(updated)
		c = got
	}
	return c, rows.Err()
}

// checkFieldsTx checks each attribute's value against the type its name
// has for the partner, and records the type of names seen for the first
// time.
func checkFieldsTx(ctx context.Context, tx *sql.Tx, partner string, attrs map[string]any) error {
	fields := make(map[string]string, len(attrs))
	for name, v := range attrs {
		got := FieldType(v)
		if got == "" {
			return fmt.Errorf("attribute %q: values of type %T cannot be stored", name, v)
		}
		fields[name] = got
	}
	return checkFieldTypesTx(ctx, tx, partner, fields) // lists_load.go
}

// mergeAttributes lays attrs over the stored JSON object and returns the
// canonical encoding (contacts_json.go), so equal attributes give equal
// bytes and an unchanged contact is recognised by comparing them.
func mergeAttributes(stored json.RawMessage, attrs map[string]any) (json.RawMessage, error) {
	over, err := EncodeAttributes(attrs)
	if err != nil {
		return nil, err
	}
	return mergeRaw(stored, over)
}

// AttributeValues decodes a contact's attributes into typed values: JSON
// numbers as int64 when integral and typed integer, float64 otherwise;
// times (by fields, the partner's attribute types) as time.Time. Segments
// and templates evaluate these.
func AttributeValues(raw json.RawMessage, fields map[string]string) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("cannot read attributes: %w", err)
	}
	for name, v := range m {
		switch v := v.(type) {
		case json.Number:
			if fields[name] == FieldInteger {
				if i, err := v.Int64(); err == nil {
					m[name] = i
					continue
				}
			}
			f, err := v.Float64()
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", name, err)
			}
			m[name] = f
		case string:
			if fields[name] == FieldTime {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					m[name] = t
				}
			}
		}
	}
	return m, nil
}

func orKeep(v, old string) string {
	if v == "" {
		return old
	}
	return v
}

func nullString(v string) sql.NullString {
	return sql.NullString{String: v, Valid: v != ""}
}
