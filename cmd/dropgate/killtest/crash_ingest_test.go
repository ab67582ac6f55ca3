package killtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store/storetest"
)

// crashIngestRows is the size of the file the mid-ingest kill test drops:
// large enough that the ingest lasts a while, small enough for CI.
// PostgreSQL ingests about a sixth as fast, so a third of the rows still
// gives the kill an ingest seconds long, and its pass sends a third as
// many messages (100,000 sends on PostgreSQL were 80 s of the package's
// time limit).
func crashIngestRows() int {
	if storetest.OnPostgres() {
		return 30_000
	}
	return 100_000
}

// TestSIGKILLMidIngestQueuesEveryRowOnce builds the binary, drops a large
// CSV, SIGKILLs the daemon while the file is being ingested (its job still
// "ingesting"), restarts it, and checks that the file is read again from
// the start: one job, every row delivered exactly once, nothing from the
// interrupted attempt.
func TestSIGKILLMidIngestQueuesEveryRowOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the daemon; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	dataDir := filepath.Join(dir, "data")
	adminAddr := crashFreeAddr(t)
	cfgPath := filepath.Join(dir, "dropgate.toml")
	cfg := crashConfigHead(t, dataDir, adminAddr) + `
[[partner]]
name     = "acme"
region   = "PT"
channels = ["sms"]

[[channel]]
name      = "sms"
type      = "outbox"
recipient = "phone"
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	d := startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-0.log"))
	inbox := filepath.Join(dataDir, "partners", "acme", "inbox")
	var b strings.Builder
	b.WriteString("phone,message,ref\n")
	rows := crashIngestRows()
	for i := range rows {
		fmt.Fprintf(&b, "+35191%07d,ingest crash %d,r%d\n", i, i, i)
	}
	tmp := filepath.Join(inbox, ".big.csv.part")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, "big.csv")); err != nil {
		t.Fatal(err)
	}
	crashWait(t, 30*time.Second, "the file's job to be ingesting", func() bool {
		var resp struct {
			Jobs []struct{ Status string } `json:"jobs"`
		}
		return crashAdminGet(adminAddr, "/api/v1/jobs?status=ingesting", &resp) && len(resp.Jobs) > 0
	})
	d.kill(t)
	if _, err := os.Stat(filepath.Join(inbox, "big.csv")); err != nil {
		t.Fatalf("the file left the inbox before its ingest was committed: %v", err)
	}

	d = startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-1.log"))
	// 100,000 rows read again and sent to the outbox: generous, for a
	// machine busy with other packages' tests (it took 57 s alone, over
	// 120 s beside them).
	jobs := waitJobsDone(t, adminAddr, 300*time.Second)
	d.stop(t)
	if len(jobs) != 1 || jobs[0].Total != rows || jobs[0].Counts["sent"] != rows {
		t.Errorf("jobs after the restart = %+v, want one with %d sent", jobs, rows)
	}

	f, err := os.Open(filepath.Join(dataDir, "outbox", "sms.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ Ref string }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("outbox line %q: %v", sc.Text(), err)
		}
		seen[m.Ref]++
		lines++
	}
	if len(seen) != rows || lines != rows {
		t.Errorf("outbox has %d lines for %d distinct rows, want %d of each", lines, len(seen), rows)
	}
}
