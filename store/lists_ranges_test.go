package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// rangeModel is what a list's members should be: status by contact id.
type rangeModel map[int64]string

func loadInto(t *testing.T, s *Store, list string, opts ListLoadOptions, rows []ContactRow) ListCounts {
	t.Helper()
	l, err := s.BeginListLoad(context.Background(), "acme", list, opts, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	for _, r := range rows {
		if err := l.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, problems, err := l.Finish(); err != nil || len(problems) > 0 {
		t.Fatalf("load: %v %+v", err, problems)
	}
	counts, err := l.Commit(0, len(rows))
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// checkMembers reads the list every way a reader does and compares each
// with the model.
func checkMembers(t *testing.T, s *Store, step string, list List, want rangeModel) {
	t.Helper()
	ctx := context.Background()
	var sub, unsub []int64
	for id, st := range want {
		if st == Subscribed {
			sub = append(sub, id)
		} else {
			unsub = append(unsub, id)
		}
	}
	slices.Sort(sub)
	slices.Sort(unsub)
	all := slices.Sorted(maps.Keys(want))
	li, err := s.ListInfoByName(ctx, list.Partner, list.Name)
	if err != nil || li.Subscribed != len(sub) || li.Unsubscribed != len(unsub) {
		t.Fatalf("%s: counts %d/%d, want %d/%d (%v)", step, li.Subscribed, li.Unsubscribed, len(sub), len(unsub), err)
	}
	for _, c := range []struct {
		status string
		ids    []int64
	}{{"", all}, {Subscribed, sub}, {Unsubscribed, unsub}} {
		var got []int64
		after := int64(0)
		for {
			page, err := s.ListMembers(ctx, list.ID, c.status, after, 97)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				if m.Status != want[m.Contact.ID] || m.Contact.Email == "" {
					t.Fatalf("%s: member %d has status %q, want %q", step, m.Contact.ID, m.Status, want[m.Contact.ID])
				}
				got = append(got, m.Contact.ID)
			}
			if len(page) < 97 {
				break
			}
			after = page[len(page)-1].Contact.ID
		}
		if !slices.Equal(got, c.ids) {
			t.Fatalf("%s: ListMembers(%q) has %d members, want %d", step, c.status, len(got), len(c.ids))
		}
	}
	lo, hi, err := s.MemberRange(ctx, list.ID)
	if err != nil || len(all) > 0 && (lo > all[0] || hi < all[len(all)-1]) {
		t.Fatalf("%s: MemberRange %d-%d, members %d-%d (%v)", step, lo, hi, all[0], all[len(all)-1], err)
	}
	r, err := s.MemberReader(MemberEmail)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, span := range []int64{1, 61, hi - lo + 1} {
		var viaReader, viaSQL []int64
		var buf []ListMember
		for from := lo; from <= hi; from += span {
			if buf, err = r.Range(ctx, list.ID, from, min(from+span-1, hi), buf); err != nil {
				t.Fatal(err)
			}
			for _, m := range buf {
				viaReader = append(viaReader, m.ContactID)
			}
			if buf, err = s.SubscribedMembers(ctx, list.ID, from, min(from+span-1, hi), MemberEmail, buf); err != nil {
				t.Fatal(err)
			}
			for _, m := range buf {
				if m.Email == "" || len(m.Attributes) == 0 {
					t.Fatalf("%s: member %d read without its email or attributes", step, m.ContactID)
				}
				viaSQL = append(viaSQL, m.ContactID)
			}
		}
		if !slices.Equal(viaReader, sub) || !slices.Equal(viaSQL, sub) {
			t.Fatalf("%s: a send in spans of %d reads %d (reader) and %d (SQL) members, want %d", step, span, len(viaReader), len(viaSQL), len(sub))
		}
	}
	// A contact's lists, by id and by address.
	for _, id := range []int64{all[0], all[len(all)/2], all[len(all)-1]} {
		ms, err := s.ContactLists(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ms, func(m Membership) bool { return m.List == list.Name })
		if i < 0 || ms[i].Status != want[id] {
			t.Fatalf("%s: contact %d's lists %+v, want %s in %s", step, id, ms, want[id], list.Name)
		}
	}
}

func rangeRows(from, to int, status string) []ContactRow {
	var rows []ContactRow
	for i := from; i < to; i++ {
		rows = append(rows, ContactRow{Line: i + 2, Email: fmt.Sprintf("c%04d@example.com", i), Attrs: []byte(fmt.Sprintf(`{"n":%d}`, i)), Status: status})
	}
	return rows
}

// TestMemberRangesReadAndChangeLikeMemberRows loads a list (a first
// import: its members become member ranges on SQLite), then changes
// single members and whole spans every way the product does, and after
// each step reads the list every way a reader does against a model.
func TestMemberRangesReadAndChangeLikeMemberRows(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	fields := map[string]string{"n": FieldInteger}
	if got := loadInto(t, s, "news", ListLoadOptions{Fields: fields}, rangeRows(0, 1500, "")); got != (ListCounts{Inserted: 1500}) {
		t.Fatalf("first load: %+v", got)
	}
	list, err := s.ListInfoByName(ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) int64 {
		t.Helper()
		c, err := s.FindContact(ctx, "acme", fmt.Sprintf("c%04d@example.com", i), "", "")
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	want := rangeModel{}
	for i := range 1500 {
		want[id(i)] = Subscribed
	}
	if s.pg {
		// PostgreSQL's load writes a row per member: the rows become the
		// range SQLite's load makes, so that every reader and writer below
		// runs its range SQL on PostgreSQL too.
		var lo, hi, n int64
		if err := s.reader.QueryRow(`SELECT min(contact_id), max(contact_id), count(*) FROM list_members WHERE list_id = ?`, list.ID).Scan(&lo, &hi, &n); err != nil || hi-lo+1 != n {
			t.Fatalf("members %d-%d, %d of them: %v", lo, hi, n, err)
		}
		if _, err := s.writer.Exec(`DELETE FROM list_members WHERE list_id = ?`, list.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.writer.Exec(`INSERT INTO list_member_ranges (list_id, lo, hi, status, updated_at) VALUES (?, ?, ?, 'subscribed', 0)`, list.ID, lo, hi); err != nil {
			t.Fatal(err)
		}
	} else {
		// The format itself: three batches of new contacts, one range.
		var ranges, rows int
		s.reader.QueryRow(`SELECT (SELECT count(*) FROM list_member_ranges), (SELECT count(*) FROM list_members)`).Scan(&ranges, &rows)
		if ranges != 1 || rows != 0 {
			t.Fatalf("first import stored %d ranges and %d member rows, want 1 and 0", ranges, rows)
		}
	}
	checkMembers(t, s, "first load", list.List, want)

	// One-click unsubscribe, a removal, API upserts.
	if got, err := s.UnsubscribeEverywhere(ctx, "acme", "c0100@example.com", "one-click", "test"); err != nil || got.Lists != 1 {
		t.Fatalf("unsubscribe: %+v %v", got, err)
	}
	want[id(100)] = Unsubscribed
	if m, err := s.Memberships(ctx, "acme", "c0100@example.com"); err != nil || m["news"] != Unsubscribed {
		t.Fatalf("memberships: %v %v", m, err)
	}
	if m, err := s.Memberships(ctx, "acme", "c0101@example.com"); err != nil || m["news"] != Subscribed {
		t.Fatalf("memberships: %v %v", m, err)
	}
	if err := s.RemoveMember(ctx, list.ID, id(200)); err != nil {
		t.Fatal(err)
	}
	delete(want, id(200))
	if err := s.RemoveMember(ctx, list.ID, id(200)); err == nil {
		t.Fatal("a removed member removed again")
	}
	if err := s.RemoveMember(ctx, list.ID, id(0)); err != nil { // a range's first id
		t.Fatal(err)
	}
	delete(want, id(0))
	for _, c := range []struct {
		i             int
		status, after string
		outcome       string
	}{{300, Unsubscribed, Unsubscribed, ContactUpdated}, {301, "", Subscribed, ContactUnchanged}, {1499, Unsubscribed, Unsubscribed, ContactUpdated}, {1499, Subscribed, Subscribed, ContactUpdated}} {
		_, outcome, err := s.PutContact(ctx, list.List, ContactInput{Email: fmt.Sprintf("c%04d@example.com", c.i), Attributes: map[string]any{"n": c.i}, Status: c.status})
		if err != nil || outcome != c.outcome {
			t.Fatalf("put %d %q: %s %v, want %s", c.i, c.status, outcome, err, c.outcome)
		}
		want[id(c.i)] = c.after
	}
	checkMembers(t, s, "single changes", list.List, want)

	// Another list of the same contacts: their lists name both.
	loadInto(t, s, "other", ListLoadOptions{}, rangeRows(0, 10, ""))
	if ms, err := s.ContactLists(ctx, id(5)); err != nil || len(ms) != 2 || ms[0].List != "news" || ms[1].List != "other" {
		t.Fatalf("lists of contact 5: %+v %v", ms, err)
	}

	// A load that changes the status of a span, re-adds a removed member
	// and adds new contacts (a new range).
	rows := rangeRows(400, 1000, Unsubscribed)
	rows = append(rows, rangeRows(200, 201, "")...)
	rows = append(rows, rangeRows(1500, 1600, "")...)
	got := loadInto(t, s, "news", ListLoadOptions{}, rows)
	if got != (ListCounts{Inserted: 100, Updated: 601}) {
		t.Fatalf("update load: %+v", got)
	}
	for i := 400; i < 1000; i++ {
		want[id(i)] = Unsubscribed
	}
	want[id(200)] = Subscribed
	for i := 1500; i < 1600; i++ {
		want[id(i)] = Subscribed
	}
	checkMembers(t, s, "update load", list.List, want)

	// Replace: everyone but 500-509 and 1400-1449 (and 0, removed).
	rows = append(rangeRows(1, 500, ""), rangeRows(510, 1400, "")...)
	rows = append(rows, rangeRows(1450, 1600, "")...)
	got = loadInto(t, s, "news", ListLoadOptions{Replace: true}, rows)
	if got.Removed != 60 || got.Inserted != 0 {
		t.Fatalf("replace load: %+v", got)
	}
	for i := 500; i < 510; i++ {
		delete(want, id(i))
	}
	for i := 1400; i < 1450; i++ {
		delete(want, id(i))
	}
	checkMembers(t, s, "replace load", list.List, want)
}
