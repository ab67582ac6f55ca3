package diskspace

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDisk is an injected filesystem whose free space the test sets.
type fakeDisk struct {
	mu          sync.Mutex
	free, total uint64
	err         error
}

func (f *fakeDisk) stat(string) (Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Usage{Free: f.free, Total: f.total}, f.err
}

func (f *fakeDisk) set(free uint64) {
	f.mu.Lock()
	f.free = free
	f.mu.Unlock()
}

func TestMinFreeIsTheSmallerOfBytesAndPercent(t *testing.T) {
	for _, c := range []struct {
		total   uint64
		bytes   int64
		percent float64
		want    uint64
	}{
		{100 << 30, 1 << 30, 5, 1 << 30},  // 5% of 100 GiB is 5 GiB: 1 GiB is smaller
		{60 << 20, 1 << 30, 5, 3 << 20},   // 5% of 60 MiB: 3 MiB
		{60 << 20, 0, 10, 6 << 20},        // percent only
		{60 << 20, 10 << 20, 0, 10 << 20}, // bytes only
		{60 << 20, 0, 0, 0},               // off
	} {
		if got := MinFree(c.total, c.bytes, c.percent); got != c.want {
			t.Errorf("MinFree(%d, %d, %g) = %d, want %d", c.total, c.bytes, c.percent, got, c.want)
		}
	}
}

func TestWatermarkTurnsLowAndBackLoggingOncePerChange(t *testing.T) {
	disk := &fakeDisk{free: 100 << 20, total: 1 << 30}
	var logs bytes.Buffer
	now := time.Unix(0, 0)
	w, err := New(Options{Dir: "/data", MinFreeBytes: 50 << 20, Stat: disk.stat,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if low, _ := w.Low(); low {
		t.Fatal("low with 100 MiB free of a 50 MiB watermark")
	}
	changed := w.Changed()
	disk.set(10 << 20)
	// Cached for MaxAge: the same answer until the clock moves on.
	if low, _ := w.Low(); low {
		t.Error("a reading younger than MaxAge was not reused")
	}
	now = now.Add(2 * time.Second)
	low, why := w.Low()
	if !low || !strings.Contains(why, "out of storage space") || !strings.Contains(why, "10.0 MiB free") {
		t.Errorf("Low = %v %q", low, why)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed was not closed when space ran low")
	}
	if err := w.Check(); !errors.Is(err, ErrLow) {
		t.Errorf("Check = %v, want ErrLow", err)
	}
	if _, err := w.Room(); !errors.Is(err, ErrLow) {
		t.Errorf("Room = %v, want ErrLow", err)
	}
	for range 5 { // still low: no more logs
		now = now.Add(2 * time.Second)
		w.Low()
	}
	disk.set(80 << 20)
	now = now.Add(2 * time.Second)
	if low, _ := w.Low(); low {
		t.Error("still low with 80 MiB free")
	}
	if room, err := w.Room(); err != nil || room != 30<<20 {
		t.Errorf("Room = %d, %v, want 30 MiB", room, err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARN logs, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "back above the watermark"); n != 1 {
		t.Errorf("%d recovery logs, want 1:\n%s", n, logs.String())
	}
}

func TestWatermarkKeepsLastStateWhenStatfsFails(t *testing.T) {
	disk := &fakeDisk{free: 1 << 20, total: 1 << 30}
	w, err := New(Options{Dir: "/data", MinFreeBytes: 50 << 20, Stat: disk.stat})
	if err != nil {
		t.Fatal(err)
	}
	disk.mu.Lock()
	disk.err = errors.New("stale NFS handle")
	disk.mu.Unlock()
	if st := w.Refresh(); !st.Low {
		t.Error("a failing statfs cleared the low state")
	}
}

func TestStatfsReadsARealFilesystem(t *testing.T) {
	u, err := Statfs(t.TempDir())
	if err != nil || u.Total == 0 || u.Free > u.Total {
		t.Errorf("Statfs = %+v, %v", u, err)
	}
}
