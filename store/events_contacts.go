package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// ContactAttributes returns the attributes of the partner's contact with
// the event's email, else its phone, else its ref (contacts, migration
// 0017), for a workflow's when; nil when there is no such contact.
func (s *Store) ContactAttributes(ctx context.Context, e *Event) (map[string]any, error) {
	for _, k := range []struct{ col, v string }{{"email", e.Email}, {"phone", e.Phone}, {"ref", e.Ref}} {
		if k.v == "" {
			continue
		}
		var raw string
		err := s.reader.QueryRowContext(ctx, `SELECT attributes FROM contacts WHERE partner = ? AND `+k.col+` = ?`, e.Partner, k.v).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the contact of an event: %w", err)
		}
		var attrs map[string]any
		if err := json.Unmarshal([]byte(raw), &attrs); err != nil {
			return nil, fmt.Errorf("cannot read the attributes of a contact: %w", err)
		}
		return attrs, nil
	}
	return nil, nil
}
