package ingest

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// archiveSweepInterval is how often the archive is checked for days past
// the retention. A day's folder goes within this long after it expires.
const archiveSweepInterval = time.Hour

// archiveLoop removes archived originals past ingest.archive_retention, at
// start and then every archiveSweepInterval, until ctx is done. A retention
// of 0 keeps the archive forever.
func (in *Ingester) archiveLoop(ctx context.Context) {
	if in.cfg.Ingest.ArchiveRetention <= 0 {
		return
	}
	t := time.NewTicker(archiveSweepInterval)
	defer t.Stop()
	for {
		in.sweepArchive()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepArchive removes every <archive>/<partner>/<yyyy-mm-dd>/ folder whose
// day ended more than the retention ago, so each file is kept at least as
// long as the retention. Folders whose names are not days are left alone,
// as are partners no longer configured: their days expire like any other.
func (in *Ingester) sweepArchive() {
	retention := in.cfg.Ingest.ArchiveRetention.D()
	if retention <= 0 {
		return
	}
	root := in.cfg.ArchiveDir()
	partners, err := os.ReadDir(root)
	if err != nil {
		if !os.IsNotExist(err) {
			in.log.Error("cannot read the archive to remove old files", "dir", root, "err", err)
		}
		return
	}
	cutoff := in.now().Add(-retention)
	for _, p := range partners {
		if !p.IsDir() {
			continue
		}
		days, err := os.ReadDir(filepath.Join(root, p.Name()))
		if err != nil {
			in.log.Error("cannot read the archive to remove old files", "partner", p.Name(), "err", err)
			continue
		}
		for _, d := range days {
			day, err := time.Parse("2006-01-02", d.Name())
			if !d.IsDir() || err != nil || day.AddDate(0, 0, 1).After(cutoff) {
				continue
			}
			dir := filepath.Join(root, p.Name(), d.Name())
			files, _ := os.ReadDir(dir)
			if err := os.RemoveAll(dir); err != nil {
				in.log.Error("cannot remove archived files past the retention", "partner", p.Name(), "day", d.Name(), "err", err)
				continue
			}
			in.log.Info("removed archived files past the retention", "partner", p.Name(), "day", d.Name(),
				"files", len(files), "retention", retention.String())
		}
	}
}
