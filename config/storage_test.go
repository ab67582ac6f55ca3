package config

import (
	"strings"
	"testing"
)

func TestStorageMinFreeAcceptsSizesAndPercentages(t *testing.T) {
	for _, c := range []struct {
		in      string
		bytes   int64
		percent float64
	}{
		{"", DefaultMinFreeBytes, DefaultMinFreePercent},
		{"1GiB", 1 << 30, 0},
		{"500MB", 500e6, 0},
		{"64M", 64 << 20, 0},
		{"1048576", 1 << 20, 0},
		{"5%", 0, 5},
		{"0", 0, 0},
	} {
		b, p, err := StorageConfig{MinFree: c.in}.MinFreeLimits()
		if err != nil || b != c.bytes || p != c.percent {
			t.Errorf("%q: %d, %g, %v; want %d, %g", c.in, b, p, err, c.bytes, c.percent)
		}
	}
}

func TestStorageMinFreeRejectsNonsenseWithItsField(t *testing.T) {
	for _, bad := range []string{"lots", "-1GB", "150%", "1XB"} {
		cfg, err := Parse(strings.NewReader("[storage]\nmin_free = \""+bad+"\"\n"), nil)
		if err != nil {
			t.Fatalf("%q: parse: %v", bad, err)
		}
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "storage.min_free") {
			t.Errorf("%q: Validate = %v, want a storage.min_free error", bad, err)
		}
	}
}
