package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func signupOf(id, email string, now time.Time) EventWrite {
	return EventWrite{Event: Event{Partner: "acme", EventID: id, Name: "signup", Email: email, Source: EventFromAPI},
		Starts: []RunStart{{Workflow: "welcome", Step: 1, DueAt: now.Add(time.Hour)}}}
}

// A batch reads the latest runs only of contacts the filter of run keys
// may hold (events_runkeys.go): a run started through another connection
// to the same SQLite file (another process) is not in this store's
// filter, and reentry must still see it.
func TestReentrySeesARunStartedThroughAnotherConnection(t *testing.T) {
	skipOnPostgres(t, "two stores on one SQLite file")
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	s1, s2 := twoStoresOnOneFile(t)
	if res, err := s1.AcceptEvents(ctx, []EventWrite{signupOf("a1", "ann@example.com", now)}, now); err != nil || len(res[0].Started) != 1 {
		t.Fatalf("first store: %+v, %v", res, err)
	}
	if res, err := s2.AcceptEvents(ctx, []EventWrite{signupOf("b1", "bob@example.com", now)}, now); err != nil || len(res[0].Started) != 1 {
		t.Fatalf("second store: %+v, %v", res, err)
	}
	res, err := s1.AcceptEvents(ctx, []EventWrite{signupOf("b2", "bob@example.com", now), signupOf("a2", "ann@example.com", now)}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Started) != 0 || len(res[1].Started) != 0 {
		t.Fatalf("a contact with a waiting run started another: %+v", res)
	}
}

// twoStoresOnOneFile opens two stores on one SQLite file, as two
// processes would; both are closed when the test ends.
func twoStoresOnOneFile(t *testing.T) (*Store, *Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dropgate.db")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores[0], stores[1]
}

// The filter takes more keys than its first capacity without losing any:
// every contact with a waiting run is read, and starts none.
func TestRunKeysPastTheirCapacityStillSeeEveryRun(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	defer func(n int) { runKeysMin = n }(runKeysMin)
	runKeysMin = 4
	s := openTest(t)
	var first, again []EventWrite
	for k := range 100 {
		first = append(first, signupOf(fmt.Sprintf("a%d", k), fmt.Sprintf("u%d@example.com", k), now))
		again = append(again, signupOf(fmt.Sprintf("b%d", k), fmt.Sprintf("u%d@example.com", k), now))
	}
	for _, batch := range [][]EventWrite{first[:3], first[3:40], first[40:]} {
		if _, err := s.AcceptEvents(ctx, batch, now); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.AcceptEvents(ctx, append(again, signupOf("c", "new@example.com", now)), now)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:100] {
		if len(r.Started) != 0 {
			t.Fatalf("u%d started a second run: %+v", i, r)
		}
	}
	if len(res[100].Started) != 1 {
		t.Fatalf("a new contact started no run: %+v", res[100])
	}
}
