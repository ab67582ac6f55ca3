package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func loadRows(t *testing.T, s *Store, opts ListLoadOptions, rows ...ContactRow) (ListCounts, []ContactRowError) {
	t.Helper()
	l, err := s.BeginListLoad(context.Background(), "acme", "news", opts, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := l.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	_, problems, err := l.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		l.Abort()
		return ListCounts{}, problems
	}
	counts, err := l.Commit(0, len(rows))
	if err != nil {
		t.Fatal(err)
	}
	return counts, nil
}

func TestListLoadInsertsUpdatesReplacesAndRefusesConflicts(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	fields := map[string]string{"city": FieldString, "orders": FieldInteger}
	counts, _ := loadRows(t, s, ListLoadOptions{Fields: fields},
		ContactRow{Line: 2, Email: "ana@example.com", Attrs: []byte(`{"city":"Lisbon","orders":3}`)},
		ContactRow{Line: 3, Email: "bia@example.com", Phone: "+351912345678"},
		ContactRow{Line: 4, Ref: "c-3", Status: Unsubscribed})
	if counts != (ListCounts{Inserted: 3}) {
		t.Fatalf("first load: %+v", counts)
	}
	// Ana's city changes (orders stays), Bia is the same, c-3 subscribes.
	counts, _ = loadRows(t, s, ListLoadOptions{Fields: fields},
		ContactRow{Line: 2, Email: "ana@example.com", Attrs: []byte(`{"city":"Porto"}`)},
		ContactRow{Line: 3, Phone: "+351912345678"},
		ContactRow{Line: 4, Ref: "c-3", Status: Subscribed})
	if counts != (ListCounts{Updated: 2, Unchanged: 1}) {
		t.Fatalf("second load: %+v", counts)
	}
	ana, err := s.FindContact(ctx, "acme", "ana@example.com", "", "")
	if err != nil || string(ana.Attributes) != `{"city":"Porto","orders":3}` {
		t.Fatalf("ana: %s %v", ana.Attributes, err)
	}
	// Ana's email with Bia's phone: a conflict, reported by line.
	_, problems := loadRows(t, s, ListLoadOptions{}, ContactRow{Line: 7, Email: "ana@example.com", Phone: "+351912345678"})
	if len(problems) != 1 || problems[0].Line != 7 || problems[0].Column != "phone" {
		t.Fatalf("conflict: %+v", problems)
	}
	// Replace: only Ana stays on the list.
	counts, _ = loadRows(t, s, ListLoadOptions{Replace: true}, ContactRow{Line: 2, Email: "ana@example.com"})
	if counts != (ListCounts{Unchanged: 1, Removed: 2}) {
		t.Fatalf("replace: %+v", counts)
	}
	li, err := s.ListInfoByName(ctx, "acme", "news")
	if err != nil || li.Subscribed != 1 || li.Unsubscribed != 0 {
		t.Fatalf("info: %+v %v", li, err)
	}
	// A field typed integer refuses string values.
	var fe *FieldTypeError
	if _, err := s.BeginListLoad(ctx, "acme", "news", ListLoadOptions{Fields: map[string]string{"orders": FieldString}}, false); !errors.As(err, &fe) {
		t.Fatalf("type: %v", err)
	}
	// The API path and the file path encode alike.
	c, outcome, err := s.PutContact(ctx, li.List, ContactInput{Email: "ana@example.com", Attributes: map[string]any{"city": "Porto"}})
	if err != nil || outcome != ContactUnchanged || c.ID != ana.ID {
		t.Fatalf("put: %s %v", outcome, err)
	}
}

// A first import looks up only the rows whose keys an earlier batch may
// have written: a contact named again in a later batch is found, and one
// named twice in a batch is one contact.
func TestListLoadFirstImportWithRepeatedContacts(t *testing.T) {
	s := openTest(t)
	var rows []ContactRow
	for i := range 1200 {
		rows = append(rows, ContactRow{Line: i + 2, Email: fmt.Sprintf("c%d@example.com", i), Attrs: []byte(`{"n":1}`)})
	}
	rows = append(rows, ContactRow{Line: 1202, Email: "c3@example.com", Phone: "+351912345678"}) // c3 again, a later batch
	rows[10] = ContactRow{Line: 12, Email: "c1@example.com", Attrs: []byte(`{"n":2}`)}           // c1 again, same batch
	counts, problems := loadRows(t, s, ListLoadOptions{Fields: map[string]string{"n": FieldInteger}}, rows...)
	if len(problems) > 0 || counts != (ListCounts{Inserted: 1199, Updated: 2}) {
		t.Fatalf("counts %+v, problems %+v", counts, problems)
	}
	c1, err := s.FindContact(context.Background(), "acme", "c1@example.com", "", "")
	if err != nil || string(c1.Attributes) != `{"n":2}` {
		t.Fatalf("c1 = %s %v", c1.Attributes, err)
	}
	if c3, err := s.FindContact(context.Background(), "acme", "", "+351912345678", ""); err != nil || c3.Email != "c3@example.com" {
		t.Fatalf("c3 = %+v %v", c3, err)
	}
	li, _ := s.ListInfoByName(context.Background(), "acme", "news")
	if li.Subscribed != 1199 {
		t.Fatalf("members = %d", li.Subscribed)
	}
}

func TestKeyFilterKeepsEveryKeyAndFewOthers(t *testing.T) {
	f := newKeyFilter(0)
	const n = 300_000
	false_ := 0
	for i := range n {
		if f.note(0, fmt.Sprintf("user%d@example.com", i)) {
			false_++
		}
		f.note(1, fmt.Sprintf("+3519%08d", i))
	}
	for i := range n {
		if !f.note(0, fmt.Sprintf("user%d@example.com", i)) || !f.note(1, fmt.Sprintf("+3519%08d", i)) {
			t.Fatalf("key %d forgotten", i)
		}
	}
	// A false "maybe" costs a lookup; a few percent is cheap.
	if false_ > n/20 {
		t.Fatalf("%d of %d absent keys answered maybe", false_, n)
	}
	t.Logf("%d of %d absent keys answered maybe", false_, n)
}

// In a first import, a row whose keys name two contacts of earlier batches
// is a conflict, as in any load.
func TestListLoadFirstImportConflictAcrossBatches(t *testing.T) {
	s := openTest(t)
	var rows []ContactRow
	for i := range 1100 {
		rows = append(rows, ContactRow{Line: i + 2, Email: fmt.Sprintf("c%d@example.com", i), Phone: fmt.Sprintf("+3519123%05d", i)})
	}
	rows = append(rows, ContactRow{Line: 1102, Email: "c2@example.com", Phone: "+351912300007"})
	_, problems := loadRows(t, s, ListLoadOptions{}, rows...)
	if len(problems) != 1 || problems[0].Line != 1102 || problems[0].Column != "phone" {
		t.Fatalf("problems %+v", problems)
	}
}

// A second load of a large list, past one batch: changed contacts are
// updated, new ones inserted, statuses changed, and with Replace the
// members it does not name are removed, as the counts say.
func TestListLoadReloadsALargeListWithReplace(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	fields := map[string]string{"n": FieldInteger}
	var first []ContactRow
	for i := range 1500 {
		first = append(first, ContactRow{Line: i + 2, Email: fmt.Sprintf("c%d@example.com", i), Ref: fmt.Sprintf("r%d", i), Attrs: []byte(`{"n":1}`)})
	}
	if counts, problems := loadRows(t, s, ListLoadOptions{Fields: fields}, first...); len(problems) > 0 || counts.Inserted != 1500 {
		t.Fatalf("first load %+v %+v", counts, problems)
	}
	// c0..c999 again by ref (every third with a new attribute, every
	// fifth unsubscribed), c1000..c1499 left out, 300 new contacts.
	var second []ContactRow
	want := ListCounts{Removed: 500}
	for i := range 1000 {
		r := ContactRow{Line: i + 2, Ref: fmt.Sprintf("r%d", i), Attrs: []byte(`{"n":1}`)}
		changed := false
		if i%3 == 0 {
			r.Attrs, changed = []byte(`{"n":2}`), true
		}
		if i%5 == 0 {
			r.Status, changed = Unsubscribed, true
		}
		if changed {
			want.Updated++
		} else {
			want.Unchanged++
		}
		second = append(second, r)
	}
	for i := range 300 {
		second = append(second, ContactRow{Line: 1002 + i, Phone: fmt.Sprintf("+3519100%05d", i)})
		want.Inserted++
	}
	counts, problems := loadRows(t, s, ListLoadOptions{Replace: true, Fields: fields}, second...)
	if len(problems) > 0 || counts != want {
		t.Fatalf("second load %+v, want %+v; problems %+v", counts, want, problems)
	}
	li, err := s.ListInfoByName(ctx, "acme", "news")
	if err != nil || li.Subscribed != 800+300 || li.Unsubscribed != 200 {
		t.Fatalf("list %+v %v", li, err)
	}
	c3, err := s.FindContact(ctx, "acme", "", "", "r3")
	if err != nil || c3.Email != "c3@example.com" || string(c3.Attributes) != `{"n":2}` {
		t.Fatalf("r3 %+v %v", c3, err)
	}
	if _, err := s.FindContact(ctx, "acme", "", "+351910000299", ""); err != nil {
		t.Fatalf("new contact: %v", err)
	}
}
