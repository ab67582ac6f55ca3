package groupcommit

import (
	"context"
	"sync"
	"testing"
	"time"
)

type testCall struct {
	n     int
	group int // the group that stored it, set by store
}

// Calls that queue while a group is stored share the next group, in
// arrival order and within the budget; every call returns only after its
// group was stored, and a call larger than the budget goes alone.
func TestCallsQueuedDuringAGroupShareTheNextWithinTheBudget(t *testing.T) {
	q := New(10, func(c *testCall) int { return c.n })
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var groups [][]int
	store := func(_ context.Context, group []*testCall) {
		mu.Lock()
		g := len(groups)
		var sizes []int
		for _, c := range group {
			c.group = g
			sizes = append(sizes, c.n)
		}
		groups = append(groups, sizes)
		mu.Unlock()
		if g == 0 {
			close(entered)
			<-release
		}
	}
	first := &testCall{n: 1}
	done := make(chan *testCall, 10)
	go func() { q.Do(context.Background(), first, store); done <- first }()
	<-entered
	later := []*testCall{{n: 4}, {n: 5}, {n: 3}, {n: 20}}
	for i, c := range later {
		go func() { q.Do(context.Background(), c, store); done <- c }()
		for deadline := time.Now().Add(20 * time.Second); q.Waiting() != i+1; {
			if time.Now().After(deadline) {
				t.Fatalf("call %d never queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case c := <-done:
		t.Fatalf("a call (size %d) returned before its group was stored", c.n)
	default:
	}
	close(release)
	for range 5 {
		<-done
	}
	want := [][]int{{1}, {4, 5}, {3}, {20}}
	if len(groups) != len(want) {
		t.Fatalf("groups %v, want %v", groups, want)
	}
	for i := range want {
		if len(groups[i]) != len(want[i]) {
			t.Fatalf("groups %v, want %v", groups, want)
		}
		for j := range want[i] {
			if groups[i][j] != want[i][j] {
				t.Fatalf("groups %v, want %v", groups, want)
			}
		}
	}
	if q.Waiting() != 0 {
		t.Fatalf("%d calls still waiting", q.Waiting())
	}
}
