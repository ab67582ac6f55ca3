package ingest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
)

// The test clock is 2026-03-01 10:00 UTC (newTestEnv).

func TestArchiveRetentionRemovesDaysPastIt(t *testing.T) {
	e := newTestEnv(t, func(cfg *config.Config) { cfg.Ingest.ArchiveRetention = config.Duration(48 * time.Hour) })
	archive := e.cfg.ArchiveDir()
	put := func(rel string) string {
		path := filepath.Join(archive, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("phone\n1\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		return filepath.Dir(path)
	}
	old := put("acme/2026-01-15/orders.csv")
	gone := put("legacy/2026-02-26/a.csv") // ended 2026-02-27 00:00, 58h ago
	put("legacy/2026-02-26/b.csv")
	kept := put("acme/2026-02-27/orders.csv") // ended 2026-02-28 00:00, 34h ago: kept
	today := put("acme/2026-03-01/orders.csv")
	other := put("acme/notes/readme.txt") // not a day: never touched
	e.run()

	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range []string{old, gone} {
		for {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there past the retention", dir)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, dir := range []string{kept, today, other} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: %v, want it kept", dir, err)
		}
	}
}

func TestArchiveRetentionZeroKeepsEverything(t *testing.T) {
	e := newTestEnv(t, func(cfg *config.Config) { cfg.Ingest.ArchiveRetention = 0 })
	dir := filepath.Join(e.cfg.ArchiveDir(), "acme", "2001-01-01")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	e.in.sweepArchive()
	e.run()
	// Run has had its chance; a file archived meanwhile shows the ingest
	// went on as usual.
	e.template("acme", "welcome", welcomeSMS)
	e.ingest("acme", "inbox/welcome/w.csv", []byte("phone,first_name,order_id\n912345678,Ana,A-1\n"))
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("retention 0 removed %s: %v", dir, err)
	}
}
