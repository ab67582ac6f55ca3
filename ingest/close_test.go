package ingest

import (
	"os"
	"testing"
)

// An Ingester that never ran (the daemon failed to start a later part)
// gives its inotify watcher back on Close; Close after that does nothing.
func TestCloseStopsTheWatcherOfAnIngesterThatNeverRan(t *testing.T) {
	openFiles := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(fds)
	}
	e := newTestEnv(t, nil)
	before := openFiles()
	if err := e.in.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if after := openFiles(); after >= before {
		t.Errorf("%d open files before Close, %d after: the watcher's were not given back", before, after)
	}
	if err := e.in.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
