package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var nValue = regexp.MustCompile(`"n":-?[0-9]+`)

// TestListLoadWritesThroughTheCAPI checks that a SQLite list load finds
// the writer connection's handle (a modernc.org/sqlite upgrade that moves
// it would silently put the load back on the driver's slower path), and
// that what it writes that way is every row's keys, attributes and
// status: new contacts with and without a status, a contact named again
// in the same batch and in a later one, missing keys as NULL, and a
// second load that updates, in several batches and statements.
func TestListLoadWritesThroughTheCAPI(t *testing.T) {
	skipOnPostgres(t, "the C API is SQLite's")
	s := openTest(t)
	ctx := context.Background()
	fields := map[string]string{"n": FieldInteger, "city": FieldString}
	const n = 1500 // three batches, many statements
	want := map[string]string{}
	status := map[string]string{}
	var rows []ContactRow
	for i := range n {
		r := ContactRow{Line: i + 2, Email: fmt.Sprintf("c%d@example.com", i), Attrs: []byte(fmt.Sprintf(`{"city":"x%d","n":%d}`, i%7, i))}
		if i%3 == 0 {
			r.Phone = fmt.Sprintf("+35191%07d", i)
		}
		if i%5 == 0 {
			r.Status = Unsubscribed
		}
		rows = append(rows, r)
		want[r.Email], status[r.Email] = string(r.Attrs), r.Status
	}
	// c2 again in its batch and c4 in a later one: attributes merged.
	rows = append(rows[:20], append([]ContactRow{{Line: 9000, Email: "c2@example.com", Attrs: []byte(`{"n":-2}`)}}, rows[20:]...)...)
	rows = append(rows, ContactRow{Line: 9001, Email: "c4@example.com", Attrs: []byte(`{"city":"far"}`), Status: Unsubscribed})
	want["c2@example.com"], want["c4@example.com"] = `{"city":"x2","n":-2}`, `{"city":"far","n":4}`
	status["c4@example.com"] = Unsubscribed

	l, err := s.BeginListLoad(ctx, "acme", "news", ListLoadOptions{Fields: fields}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	for _, r := range rows {
		if err := l.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	counts, problems, err := l.Finish()
	if err != nil || len(problems) > 0 || counts != (ListCounts{Inserted: n, Updated: 2}) {
		t.Fatalf("counts %+v, problems %+v, %v", counts, problems, err)
	}
	if l.cw == nil {
		t.Fatalf("the load wrote through the driver, not the C API: rawConnOf does not know modernc.org/sqlite's connection any more")
	}
	// A statement SQLite refuses comes back as an error with its reason.
	if _, err := l.exec(`INSERT INTO no_such_table VALUES (?)`, []any{"x"}); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("bad statement: %v", err)
	}
	if _, err := l.Commit(0, len(rows)); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		li, err := s.ListByName(ctx, "acme", "news")
		if err != nil {
			t.Fatal(err)
		}
		ms, err := s.ListMembers(ctx, li.ID, "", 0, 10*n)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != n {
			t.Fatalf("%d members, want %d", len(ms), n)
		}
		for _, m := range ms {
			st := status[m.Email]
			if st == "" {
				st = Subscribed
			}
			var i int
			fmt.Sscanf(m.Email, "c%d@", &i)
			phone := ""
			if i%3 == 0 {
				phone = fmt.Sprintf("+35191%07d", i)
			}
			if string(m.Attributes) != want[m.Email] || m.Status != st || m.Phone != phone || m.Ref != "" {
				t.Fatalf("%s: attributes %s status %s phone %q ref %q, want %s %s %q", m.Email, m.Attributes, m.Status, m.Phone, m.Ref, want[m.Email], st, phone)
			}
		}
	}
	check()

	// Again, every contact changed and resubscribed: updates and member
	// upserts through the same path.
	for i := range rows {
		rows[i].Attrs, rows[i].Status = []byte(`{"n":0}`), Subscribed
	}
	for e := range want {
		want[e] = nValue.ReplaceAllString(want[e], `"n":0`)
		status[e] = Subscribed
	}
	if counts, problems := loadRows(t, s, ListLoadOptions{Fields: fields}, rows...); len(problems) > 0 || counts.Updated+counts.Unchanged != len(rows) || counts.Inserted != 0 {
		t.Fatalf("second load: %+v %+v", counts, problems)
	}
	check()
}
