package admin

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The chart puts a minute's counts at its place on the 24-hour axis, scaled
// to the busiest minute, and draws flat stretches with two points.
func TestChannelChartPlacesMinutes(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC)
	svg := string(channelChart(slices.Values([]store.ChannelMinute{
		{Channel: "sms", Minute: now.Truncate(time.Minute).Add(-time.Minute), Sent: 40, Failed: 4},
	}), now))
	if !strings.Contains(svg, "peak 40/min") {
		t.Fatalf("no peak label: %s", svg)
	}
	// The minute before now is at x = 1439/1440 of the width, at the top.
	if !strings.Contains(svg, "719.5,10.0") {
		t.Fatalf("the busy minute is not at the right end at full height: %s", svg)
	}
	if n := strings.Count(svg, ","); n > 40 {
		t.Fatalf("%d points for one busy minute", n)
	}
}
