package store

import (
	"context"
	"strings"
	"testing"
)

// A partner's first contact, put through the API, makes the next list
// load of that partner look its rows up: without the contact_partners
// row (migration 0048) the load would take itself for a first import and
// insert the contact again.
func TestListLoadAfterPutContactFindsTheContact(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	list, err := s.EnsureList(ctx, "acme", "vip")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutContact(ctx, list, ContactInput{Email: "ana@example.com", Phone: "+351912345678"}); err != nil {
		t.Fatal(err)
	}
	counts, problems := loadRows(t, s, ListLoadOptions{Fields: map[string]string{"city": FieldString}},
		ContactRow{Line: 2, Email: "ana@example.com", Attrs: []byte(`{"city":"Porto"}`)},
		ContactRow{Line: 3, Phone: "+351912345678"},
		ContactRow{Line: 4, Email: "bia@example.com"})
	if len(problems) > 0 || counts != (ListCounts{Inserted: 1, Updated: 1, Unchanged: 1}) {
		t.Fatalf("load: %+v %+v", counts, problems)
	}
	ana, err := s.FindContact(ctx, "acme", "", "+351912345678", "")
	if err != nil || ana.Email != "ana@example.com" || string(ana.Attributes) != `{"city":"Porto"}` {
		t.Fatalf("ana: %+v %v", ana, err)
	}
	// Another partner's contacts do not make acme's neighbour's first
	// load look anything up, and do not collide with the same keys.
	l, err := s.BeginListLoad(ctx, "beta", "news", ListLoadOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	if l.filter == nil {
		t.Fatal("beta has no contacts: its first load should be a first import")
	}
	if err := l.Add(ContactRow{Line: 2, Email: "ana@example.com", Phone: "+351912345678"}); err != nil {
		t.Fatal(err)
	}
	if counts, err := l.Commit(0, 1); err != nil || counts != (ListCounts{Inserted: 1}) {
		t.Fatalf("beta: %+v %v", counts, err)
	}
}

// Migration 0048 keeps the contacts, keeps email and phone unique within a
// partner, and records the partners that already have contacts.
func TestContactKeyMigrationKeepsContactsAndTheirPartners(t *testing.T) {
	skipOnPostgres(t, "SQLite's migration history; PostgreSQL keeps its partner-first indexes")
	ctx := context.Background()
	old, migrate := openAtMigration(t, 45)
	execOld(t, old,
		`INSERT INTO lists (id, partner, name, created_at) VALUES (1, 'acme', 'news', 0)`,
		`INSERT INTO contacts (id, partner, email, phone, ref, attributes, created_at, updated_at) VALUES (7, 'acme', 'ana@example.com', '+351912345678', 'c-1', '{"orders":1}', 0, 0)`,
		`INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (1, 7, 'subscribed', 0)`)
	s := migrate()
	counts, problems := loadRows(t, s, ListLoadOptions{Fields: map[string]string{"orders": FieldInteger}},
		ContactRow{Line: 2, Email: "ana@example.com", Attrs: []byte(`{"orders":2}`)})
	if len(problems) > 0 || counts != (ListCounts{Updated: 1}) {
		t.Fatalf("load after the migration: %+v %+v", counts, problems)
	}
	ana, err := s.FindContact(ctx, "acme", "", "+351912345678", "")
	if err != nil || ana.ID != 7 || string(ana.Attributes) != `{"orders":2}` {
		t.Fatalf("ana: %+v %v", ana, err)
	}
	for _, q := range []string{
		`INSERT INTO contacts (partner, email, created_at, updated_at) VALUES ('acme', 'ana@example.com', 0, 0)`,
		`INSERT INTO contacts (partner, phone, created_at, updated_at) VALUES ('acme', '+351912345678', 0, 0)`,
		`INSERT INTO contacts (partner, ref, created_at, updated_at) VALUES ('acme', 'c-1', 0, 0)`,
	} {
		if _, err := s.writer.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
			t.Errorf("%s: %v, want a UNIQUE failure", q, err)
		}
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO contacts (partner, email, created_at, updated_at) VALUES ('beta', 'ana@example.com', 0, 0)`); err != nil {
		t.Errorf("the same email for another partner: %v", err)
	}
}

// Every query that finds contacts by email, phone or ref seeks the key
// indexes, which lead with the key since 0048 (a query by partner alone
// would scan them).
func TestContactKeyQueriesUseTheKeyIndexes(t *testing.T) {
	skipOnPostgres(t, "SQLite's query plans")
	s := openTest(t)
	for _, q := range []string{
		`SELECT id, email, phone, ref, attributes FROM contacts WHERE partner = ? AND email IN (?, ?)`, // lookUp
		`SELECT id, email, phone, ref, attributes FROM contacts WHERE partner = ? AND phone IN (?, ?)`,
		`SELECT ` + contactColumns + ` FROM contacts c WHERE c.partner = ? AND c.email = ?`, // FindContact
		`SELECT ` + contactColumns + ` FROM contacts c WHERE c.partner = ? AND c.phone = ?`,
		`SELECT id, email, phone, ref, attributes, created_at, updated_at FROM contacts
			WHERE partner = ?1 AND (email = ?2 OR phone = ?3 OR ref = ?4)`, // findContactTx
		`UPDATE list_members SET status = 'unsubscribed', updated_at = ?3
			WHERE status <> 'unsubscribed' AND list_id IN (SELECT id FROM lists WHERE partner = ?1) AND contact_id IN (
				SELECT id FROM contacts WHERE partner = ?1 AND (email = ?2 OR phone = ?2))`, // UnsubscribeEverywhere
		`SELECT l.name, m.status FROM contacts c
			JOIN lists l ON l.partner = c.partner
			JOIN list_members m ON m.list_id = l.id AND m.contact_id = c.id
			WHERE c.partner = ?1 AND (c.email = ?2 OR c.phone = ?2)`, // Memberships
		`SELECT attributes FROM contacts WHERE partner = ? AND email = ?`, // ContactAttributes
		`SELECT attributes FROM contacts WHERE partner = ? AND phone = ?`,
		`SELECT id, email, phone, ref, attributes FROM contacts WHERE partner = ? AND ref IN (?, ?)`,
		`SELECT attributes FROM contacts WHERE partner = ? AND ref = ?`,
	} {
		plan := queryPlan(t, s.reader, q, "acme", "x", "y", "z")
		all := strings.Join(plan, "; ")
		if !strings.Contains(all, "contacts_email") && !strings.Contains(all, "contacts_phone") && !strings.Contains(all, "contacts_ref") {
			t.Errorf("%s\nplan: %s", q, all)
		}
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN c") || strings.HasPrefix(p, "SCAN contacts") {
				t.Errorf("%s scans the contacts: %s", q, all)
			}
		}
	}
}
