package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPutContactInsertsUpdatesAndKeepsUnchanged(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	list, err := s.EnsureList(ctx, "acme", "newsletter")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.EnsureList(ctx, "acme", "newsletter")
	if err != nil || again.ID != list.ID {
		t.Fatalf("EnsureList twice: %+v %v", again, err)
	}
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, outcome, err := s.PutContact(ctx, list, ContactInput{Email: "ana@example.com", Attributes: map[string]any{"city": "Lisbon", "orders": int64(3), "seen": seen}})
	if err != nil || outcome != ContactInserted {
		t.Fatalf("insert: %s %v", outcome, err)
	}
	// The same again: unchanged. A phone for the same email: updated, same contact.
	if _, outcome, err = s.PutContact(ctx, list, ContactInput{Email: "ana@example.com", Attributes: map[string]any{"city": "Lisbon"}}); err != nil || outcome != ContactUnchanged {
		t.Fatalf("same again: %s %v", outcome, err)
	}
	c2, outcome, err := s.PutContact(ctx, list, ContactInput{Email: "ana@example.com", Phone: "+351912345678", Status: Unsubscribed})
	if err != nil || outcome != ContactUpdated || c2.ID != c.ID || c2.Phone != "+351912345678" {
		t.Fatalf("update: %+v %s %v", c2, outcome, err)
	}
	// A phone of one contact and the email of another: a conflict.
	if _, _, err := s.PutContact(ctx, list, ContactInput{Email: "bia@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutContact(ctx, list, ContactInput{Email: "bia@example.com", Phone: "+351912345678"}); !errors.Is(err, ErrContactConflict) {
		t.Fatalf("conflict: %v", err)
	}
	// A value that does not fit its attribute's type.
	var fe *FieldTypeError
	if _, _, err := s.PutContact(ctx, list, ContactInput{Email: "ana@example.com", Attributes: map[string]any{"orders": "many"}}); !errors.As(err, &fe) || fe.Want != FieldInteger {
		t.Fatalf("type: %v", err)
	}
	fields, err := s.ContactFields(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	values, err := AttributeValues(c2.Attributes, fields)
	if err != nil {
		t.Fatal(err)
	}
	if values["orders"] != int64(3) || values["city"] != "Lisbon" || !values["seen"].(time.Time).Equal(seen) {
		t.Fatalf("values: %#v", values)
	}
}
