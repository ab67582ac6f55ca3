package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/diskspace"
	"github.com/dropgate/dropgate/store"
)

// newWatermark builds the data folder's free-space watermark from
// [storage] min_free.
func newWatermark(cfg *config.Config, logger *slog.Logger) (*diskspace.Watermark, error) {
	b, pct, err := cfg.Storage.MinFreeLimits()
	if err != nil {
		return nil, fmt.Errorf("storage.min_free: %w", err)
	}
	wm, err := diskspace.New(diskspace.Options{Dir: cfg.DataDir, MinFreeBytes: b, MinFreePercent: pct, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("cannot watch the data folder's free space: %w", err)
	}
	return wm, nil
}

// storageGuard runs the watermark and, each time space runs low,
// truncates the WAL so that whatever the database no longer needs goes
// back to the filesystem at once.
type storageGuard struct {
	wm     *diskspace.Watermark
	st     *store.Store
	logger *slog.Logger
}

func (g *storageGuard) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			changed := g.wm.Changed()
			if low, _ := g.wm.Low(); low {
				before := g.st.WALSize()
				if ok, err := g.st.TruncateWAL(ctx); err != nil {
					g.logger.Warn("storage low: cannot truncate the WAL", "err", err)
				} else if ok && before > 0 {
					g.logger.Info("storage low: WAL truncated", "freed_bytes", before)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	err := g.wm.Run(ctx)
	cancel()
	<-done
	return err
}

// degraded joins the reasons the parts give for not working fully yet,
// for /readyz.
func degraded(parts ...interface{ Degraded() string }) func() string {
	return func() string {
		var why []string
		for _, p := range parts {
			if d := p.Degraded(); d != "" {
				why = append(why, d)
			}
		}
		return strings.Join(why, "; ")
	}
}
