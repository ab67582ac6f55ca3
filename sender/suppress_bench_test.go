package sender

import (
	"context"
	"fmt"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// benchSuppressions is how many suppressions the partner has stored while
// BenchmarkHTTPDeliverySuppressed sends.
const benchSuppressions = 100_000

// BenchmarkHTTPDeliverySuppressed is BenchmarkHTTPDelivery with the daemon's
// suppression hook (cmd/dropgate/serve.go) asking the store before every
// message, once with none stored and once with 100,000 stored for the
// partner (none of them a recipient of the job, so every message is still
// sent), in the same run as the bare loop; and the CPU per message of each
// (the 100,000 suppressions' insert is not in the sender's figure: it ends
// before Run starts):
//
//	go test ./sender -run '^$' -bench HTTPDelivery -benchtime 1x
func BenchmarkHTTPDeliverySuppressed(b *testing.B) {
	srv, _ := newBenchSink(b)
	cpu0 := cpuTime()
	bare1 := bareClientRate(b, srv.URL+"/v1/messages")
	bareCPU := cpuTime() - cpu0
	cc := config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: srv.URL + "/v1/messages", IDPath: "/id", Concurrency: benchConcurrency}
	hook := func(stored int) func(*Options) {
		return func(o *Options) {
			st := o.Store
			sups := make([]store.Suppression, stored)
			for i := range sups {
				sups[i] = store.Suppression{Partner: "bench", Recipient: fmt.Sprintf("+1666%07d", i), Source: "bench"}
			}
			if _, err := st.AddSuppressions(context.Background(), sups); err != nil {
				b.Fatal(err)
			}
			o.Suppressed = func(ctx context.Context, partner, channel, recipient string) (bool, error) {
				return st.IsSuppressed(ctx, partner, channel, ingest.SuppressionKey(recipient))
			}
		}
	}
	noneRun, manyRun := senderRate(b, cc, hook(0)), senderRate(b, cc, hook(benchSuppressions))
	none, noneCPU, many, manyCPU := noneRun.rate, noneRun.cpu, manyRun.rate, manyRun.cpu
	cpu1 := cpuTime()
	bare2 := bareClientRate(b, srv.URL+"/v1/messages")
	bareCPU = (bareCPU + cpuTime() - cpu1) / 2
	bare := (bare1 + bare2) / 2
	b.ReportMetric(bare, "bare_msgs/s")
	b.ReportMetric(none, "sender_0_suppressions_msgs/s")
	b.ReportMetric(many, "sender_100k_suppressions_msgs/s")
	b.ReportMetric(none/bare, "ratio_0")
	b.ReportMetric(many/bare, "ratio_100k")
	// CPU per message (the sink's share included), which a busy machine
	// moves much less than throughput: see BenchmarkHTTPDelivery.
	b.ReportMetric(float64(bareCPU.Microseconds())/benchMessages, "bare_cpu_us/msg")
	b.ReportMetric(float64(noneCPU.Microseconds())/benchMessages, "sender_0_cpu_us/msg")
	b.ReportMetric(float64(manyCPU.Microseconds())/benchMessages, "sender_100k_cpu_us/msg")
	b.ReportMetric(float64(bareCPU)/float64(manyCPU), "cpu_ratio_100k")
}
