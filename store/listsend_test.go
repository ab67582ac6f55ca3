package store

import (
	"context"
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
