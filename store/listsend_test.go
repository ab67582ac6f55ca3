package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// MemberRange gives the lowest and highest contact id of one list's
// members (not another list's), and 0, 0 for a list without members.
func TestMemberRangeIsOneListsSpan(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	a, err := s.EnsureList(ctx, "acme", "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EnsureList(ctx, "acme", "b")
	if err != nil {
		t.Fatal(err)
	}
	empty, err := s.EnsureList(ctx, "acme", "empty")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range 6 {
		list := a
		if i == 0 || i == 5 {
			list = b // b's members are the lowest and the highest contacts
		}
		c, _, err := s.PutContact(ctx, list, ContactInput{Ref: fmt.Sprintf("c%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for _, c := range []struct {
		list   List
		lo, hi int64
	}{{a, ids[1], ids[4]}, {b, ids[0], ids[5]}, {empty, 0, 0}} {
		lo, hi, err := s.MemberRange(ctx, c.list.ID)
		if err != nil || lo != c.lo || hi != c.hi {
			t.Errorf("list %s: %d..%d, %v; want %d..%d", c.list.Name, lo, hi, err, c.lo, c.hi)
		}
	}
}

// A MemberReader (SQLite: a connection of its own through SQLite's C API)
// reads what SubscribedMembers reads, for every choice of keys and range:
// only the list's subscribed members, NULL keys as "", in contact order.
// The keys it made for one range stay as they were while later ranges are
// read into the same buffer (they share arrays made per range), and each
// range is a read of its own: a member added after the reader was opened
// is seen by the next range.
func TestMemberReaderAgreesWithSubscribedMembers(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	list, err := s.EnsureList(ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.EnsureList(ctx, "acme", "other")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := s.EnsureList(ctx, "globex", "news")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		in := ContactInput{Attributes: map[string]any{"n": i, "city": fmt.Sprintf("city %d", i%7)}}
		switch i % 4 {
		case 0:
			in.Email = fmt.Sprintf("c%d@example.com", i)
		case 1:
			in.Phone = fmt.Sprintf("+3519100000%02d", i)
		case 2:
			in.Email, in.Phone, in.Ref = fmt.Sprintf("c%d@example.com", i), fmt.Sprintf("+3519100000%02d", i), fmt.Sprintf("r%d", i)
		case 3:
			in.Ref = fmt.Sprintf("r%d", i)
		}
		l := list
		switch {
		case i%9 == 4:
			l = other
		case i%11 == 5:
			l = theirs
		case i%5 == 3:
			in.Status = "unsubscribed"
		}
		if _, _, err := s.PutContact(ctx, l, in); err != nil {
			t.Fatal(err)
		}
	}
	lo, hi, err := s.MemberRange(ctx, list.ID)
	if err != nil {
		t.Fatal(err)
	}
	for keys := range MemberKeys(8) {
		r, err := s.MemberReader(keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, span := range []int64{1, 7, hi - lo + 1} {
			var buf []ListMember
			type keptKeys struct {
				email, phone, ref string
				n                 int
			}
			var kept []keptKeys
			for from := lo; from <= hi; from += span {
				want, err := s.SubscribedMembers(ctx, list.ID, from, from+span-1, keys, nil)
				if err != nil {
					t.Fatal(err)
				}
				buf, err = r.Range(ctx, list.ID, from, from+span-1, buf)
				if err != nil {
					t.Fatal(err)
				}
				if got, w := fmt.Sprintf("%+q", members(buf)), fmt.Sprintf("%+q", members(want)); got != w {
					t.Fatalf("keys %03b, %d..%d: reader %s; SubscribedMembers %s", keys, from, from+span-1, got, w)
				}
				for _, m := range buf {
					kept = append(kept, keptKeys{m.Email, m.Phone, m.Ref, attrN(t, m)})
				}
				for _, k := range kept { // the keys of earlier ranges, unchanged
					if k.email != "" && k.email != fmt.Sprintf("c%d@example.com", k.n) ||
						k.phone != "" && k.phone != fmt.Sprintf("+3519100000%02d", k.n) ||
						k.ref != "" && k.ref != fmt.Sprintf("r%d", k.n) {
						t.Fatalf("keys %03b: a key of an earlier range changed: %+v", keys, k)
					}
				}
			}
		}
		// A member added now is read by the same reader's next range.
		if keys == 0 {
			c, _, err := s.PutContact(ctx, list, ContactInput{Ref: "r99", Attributes: map[string]any{"n": 99}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Range(ctx, list.ID, c.ID, c.ID, nil)
			if err != nil || len(got) != 1 || got[0].ContactID != c.ID {
				t.Fatalf("a member added after the reader opened: %+v, %v", got, err)
			}
		}
		r.Close()
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	r, err := s.MemberReader(MemberEmail)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Range(cancelled, list.ID, lo, hi, nil); err == nil {
		t.Error("a cancelled context read members")
	}
}

// members is what a read of members returned, comparable as text; the
// keys and attributes are copied, so later reads do not change it.
func members(ms []ListMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d|%s|%s|%s|%s", m.ContactID, m.Email, m.Phone, m.Ref, m.Attributes))
	}
	return out
}

// attrN is a member's attribute n.
func attrN(t *testing.T, m ListMember) int {
	t.Helper()
	var a struct{ N int }
	if err := json.Unmarshal(m.Attributes, &a); err != nil {
		t.Fatal(err)
	}
	return a.N
}
