package config

import (
	"fmt"
	"strconv"
	"strings"
)

// StorageConfig guards the data folder's filesystem.
type StorageConfig struct {
	// MinFree is the free-space watermark: below it new uploads, API sends
	// and ingests wait. A size ("1GiB", "500MB", "1073741824") or a
	// percentage of the filesystem ("5%"); "" is the default, the smaller
	// of 1 GiB and 5 %; "0" turns the watermark off.
	MinFree string `toml:"min_free"`
}

// Default watermark: the smaller of these two.
const (
	DefaultMinFreeBytes   = 1 << 30
	DefaultMinFreePercent = 5.0
)

// MinFreeLimits returns the watermark as a byte count and a percentage of
// the filesystem; when both are set the smaller applies, and zero means
// unset. Both zero: no watermark.
func (s StorageConfig) MinFreeLimits() (bytes int64, percent float64, err error) {
	v := strings.TrimSpace(s.MinFree)
	if v == "" {
		return DefaultMinFreeBytes, DefaultMinFreePercent, nil
	}
	if num, ok := strings.CutSuffix(v, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || p < 0 || p >= 100 {
			return 0, 0, fmt.Errorf("%q is not a percentage from 0%% to below 100%%", v)
		}
		return 0, p, nil
	}
	b, err := ParseSize(v)
	if err != nil {
		return 0, 0, err
	}
	return b, 0, nil
}

// sizeUnits are the suffixes ParseSize accepts, longest first so "MiB"
// is not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseSize reads a byte size: a number with an optional unit (B, KB, MB,
// GB, TB in powers of 1000; KiB, MiB, GiB, TiB, K, M, G, T in powers of
// 1024).
func ParseSize(s string) (int64, error) {
	v := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size like \"1GiB\", \"500MB\" or \"5%%\"", s)
	}
	return int64(n * float64(mult)), nil
}

// validateStorage checks [storage].
func (c *Config) validateStorage(bad func(field, format string, args ...any)) {
	if _, _, err := c.Storage.MinFreeLimits(); err != nil {
		bad("storage.min_free", "%v", err)
	}
}
