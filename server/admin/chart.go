package admin

import (
	"fmt"
	"html/template"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dropgate/dropgate/store"
)

// Chart geometry: one pixel column per 2 minutes of a day.
const (
	chartW, chartH = 720, 120
	chartMinutes   = 24 * 60
)

// channelChart draws a channel's sent (green) and failed (red) messages per
// minute over the 24 hours to now as an inline SVG, scaled to the busiest
// minute. The server draws it, so the page needs no script.
func channelChart(minutes iter.Seq[store.ChannelMinute], now time.Time) template.HTML {
	start := now.Truncate(time.Minute).Add(-chartMinutes * time.Minute)
	sent := make([]int, chartMinutes+1)
	failed := make([]int, chartMinutes+1)
	peak := 1
	for m := range minutes {
		i := int(m.Minute.Sub(start) / time.Minute)
		if i < 0 || i > chartMinutes {
			continue
		}
		sent[i], failed[i] = m.Sent, m.Failed
		peak = max(peak, m.Sent, m.Failed)
	}
	// A point only where the line bends: a quiet day is a few points, not
	// 1,441.
	line := func(vals []int) string {
		b := make([]byte, 0, 4096)
		for i, v := range vals {
			if i > 0 && i < len(vals)-1 && vals[i-1] == v && vals[i+1] == v {
				continue
			}
			b = appendTenths(b, float64(i)*chartW/chartMinutes)
			b = append(b, ',')
			b = appendTenths(b, chartH-float64(v)*(chartH-10)/float64(peak))
			b = append(b, ' ')
		}
		return string(b)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="messages per minute, last 24 hours">`, chartW, chartH+16)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" class="bg"/>`, chartW, chartH)
	for h := 0; h <= 24; h += 6 {
		x := float64(h) * chartW / 24
		fmt.Fprintf(&b, `<line x1="%.0f" y1="0" x2="%.0f" y2="%d" class="grid"/><text x="%.0f" y="%d" class="axis">%s</text>`,
			x, x, chartH, min(x, chartW-30), chartH+13, start.Add(time.Duration(h)*time.Hour).Local().Format("15:04"))
	}
	fmt.Fprintf(&b, `<text x="4" y="12" class="axis">peak %d/min</text>`, peak)
	fmt.Fprintf(&b, `<polyline points="%s" class="sent"/><polyline points="%s" class="failed"/></svg>`, line(sent), line(failed))
	return template.HTML(b.String())
}

// appendTenths appends a non-negative v rounded to one decimal, as
// fmt's %.1f would: the chart's thousands of points were a third of the
// overview's time with fmt.
func appendTenths(b []byte, v float64) []byte {
	t := int64(math.Round(v * 10))
	b = strconv.AppendInt(b, t/10, 10)
	return append(b, '.', byte('0'+t%10))
}
