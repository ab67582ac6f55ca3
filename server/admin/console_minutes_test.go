package admin

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store/storetest"
)

// The overview's minute cache reads a settled minute once and the last two
// minutes on every page, and drops minutes that leave the window.
func TestMinuteCacheReadsSettledMinutesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	st, err := storetest.OpenAt(t, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw := storetest.Raw(t, path)
	exec := func(q string, args ...any) {
		t.Helper()
		raw.Exec(t, q, args...)
	}
	now := time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC)
	minute := func(t time.Time) int64 { return t.Unix() / 60 }
	for i := 0; i <= 100; i++ {
		exec(`INSERT INTO channel_minutes (channel, minute, sent, failed) VALUES ('sms', ?, 1, 0)`, minute(now)-int64(i))
	}
	var c minuteCache
	get := func(since, now time.Time) map[int64]int {
		t.Helper()
		series, err := c.since(ctx, st, []string{"sms"}, since, now)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]int{}
		for m := range series["sms"].all() {
			if _, dup := out[m.Minute.Unix()/60]; dup {
				t.Fatalf("minute %v twice", m.Minute)
			}
			out[m.Minute.Unix()/60] = m.Sent
		}
		return out
	}
	day := now.Add(-24 * time.Hour)
	if got := get(day, now); len(got) != 101 {
		t.Fatalf("first page: %d minutes, want 101", len(got))
	}
	// Settled minutes are not read again; the last two are.
	exec(`DELETE FROM channel_minutes WHERE minute < ?`, minute(now)-1)
	exec(`UPDATE channel_minutes SET sent = 7 WHERE minute >= ?`, minute(now)-1)
	got := get(day, now)
	if len(got) != 101 || got[minute(now)-50] != 1 || got[minute(now)] != 7 || got[minute(now)-1] != 7 {
		t.Fatalf("second page: %d minutes, %d sent 50 minutes ago (want 1, from the cache), %d and %d in the last two (want 7, read again)",
			len(got), got[minute(now)-50], got[minute(now)-1], got[minute(now)])
	}
	// Two minutes later: new minutes come, and the window moves.
	later := now.Add(2 * time.Minute)
	exec(`INSERT INTO channel_minutes (channel, minute, sent, failed) VALUES ('sms', ?, 3, 0), ('sms', ?, 3, 0)`, minute(later)-1, minute(later))
	got = get(now.Add(-90*time.Minute), later)
	if len(got) != 93 || got[minute(later)] != 3 || got[minute(now)] != 7 {
		t.Fatalf("two minutes later: %d minutes (want 91 + 2), last %d (want 3), %d at the first page's minute (want 7)", len(got), got[minute(later)], got[minute(now)])
	}
}
