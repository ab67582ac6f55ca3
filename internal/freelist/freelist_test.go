package freelist

import "testing"

func TestGetReusesAClearedSlice(t *testing.T) {
	l := New[*int](2, 100)
	b := l.Get(10)
	if len(b) != 10 {
		t.Fatalf("len %d, want 10", len(b))
	}
	x := 1
	for i := range b {
		b[i] = &x
	}
	l.Put(b)
	c := l.Get(5)
	if &c[:1][0] != &b[0] {
		t.Fatal("Get did not reuse the slice Put gave back")
	}
	for i, p := range c[:cap(c)] {
		if p != nil {
			t.Fatalf("element %d still refers to the last user's value", i)
		}
	}
}

func TestItKeepsNoMoreThanItWasToldTo(t *testing.T) {
	l := New[int](1, 100)
	big := make([]int, 200)
	l.Put(big) // over maxCap: not kept
	if b := l.Get(150); &b[0] == &big[0] {
		t.Fatal("a slice over the largest capacity was kept")
	}
	a, b := l.Get(10), l.Get(10)
	l.Put(a)
	l.Put(b) // the list is full: b is dropped
	if c := l.Get(10); &c[0] != &a[0] {
		t.Fatal("the first slice given back was not the one kept")
	}
	if c := l.Get(10); &c[0] == &b[0] {
		t.Fatal("a slice beyond the list's size was kept")
	}
}

func TestASmallKeptSliceIsNotGivenForALargerRequest(t *testing.T) {
	l := New[int](1, 100)
	l.Put(make([]int, 4))
	if b := l.Get(50); len(b) != 50 || cap(b) < 50 {
		t.Fatalf("Get(50) gave len %d cap %d", len(b), cap(b))
	}
}
