package killtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestARestartAfterSIGKILLDoesNotWaitForTheLeases: the daemon's workers
// hang in the provider holding messages leased for an hour when it is
// killed; started again on the same data_dir, it knows (its lock was free)
// that nothing of its previous life runs, and sends what that life held at
// once instead of an hour later.
func TestARestartAfterSIGKILLDoesNotWaitForTheLeases(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the daemon; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildDaemon(t, dir)

	sink := &keySink{seen: map[string]int{}}
	var hang atomic.Bool
	hang.Store(true)
	var hung atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			hung.Add(1)
			<-release // the daemon is killed meanwhile: nobody reads the answer
			return
		}
		sink.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first

	dataDir := filepath.Join(dir, "data")
	adminAddr := crashFreeAddr(t)
	cfgPath := filepath.Join(dir, "dropgate.toml")
	writeCrashConfig(t, cfgPath, dataDir, adminAddr, srv.URL+"/v1/sms")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Replace(string(cfg), `lease          = "2s"`, `lease          = "1h"`, 1)
	if long == string(cfg) {
		t.Fatal("the crash config no longer sets the lease this test lengthens")
	}
	if err := os.WriteFile(cfgPath, []byte(long), 0o600); err != nil {
		t.Fatal(err)
	}
	dropCrashCSV(t, filepath.Join(dataDir, "partners", "acme", "inbox"))

	d := startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-0.log"))
	crashWait(t, 120*time.Second, fmt.Sprintf("%d workers hanging in the provider", crashConcurrency), func() bool {
		return hung.Load() >= crashConcurrency
	})
	d.kill(t)
	hang.Store(false)

	restartLog := filepath.Join(dir, "daemon-1.log")
	d = startCrashChild(t, bin, cfgPath, adminAddr, restartLog)
	// Without the take-back, the hung messages' leases hold them for an hour.
	// 20,000 deliveries on PostgreSQL beside other packages' tests and two
	// CPU burners took over two minutes once: the bound only ends a hang.
	jobs := waitJobsDone(t, adminAddr, 300*time.Second)
	d.stop(t)

	total, distinct := sink.counts()
	if distinct != crashMessages || total != distinct {
		t.Errorf("provider saw %d deliveries of %d distinct messages after the restart, want each of %d once", total, distinct, crashMessages)
	}
	if len(jobs) != 1 || jobs[0].Counts["sent"] != crashMessages {
		t.Errorf("jobs = %+v", jobs)
	}
	log, _ := os.ReadFile(restartLog)
	if !strings.Contains(string(log), "previous life held") {
		t.Errorf("the restart did not log taking back the messages held:\n%s", lastLines(string(log), 20))
	}
}
