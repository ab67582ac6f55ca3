package sender

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// latencyDrops is how many 1-row files BenchmarkDropToDelivery drops.
const latencyDrops = 50

// BenchmarkDropToDelivery measures how long a 1-row file takes from its
// drop to the provider: a real store, ingest.Ingester and Sender (default
// poll interval, http channel to an in-process sink), each drop a rename of
// a 1-row CSV into the partner's inbox followed by FileComplete, as the
// SFTP and FTP servers do after a rename. Timed from the rename to the sink
// seeing the message; p50 and p99 over 50 drops, one at a time.
//
//	go test ./sender -run '^$' -bench DropToDelivery -benchtime 1x
func BenchmarkDropToDelivery(b *testing.B) {
	arrived := make(chan time.Time, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"p1"}`)
		arrived <- time.Now()
	}))
	b.Cleanup(sink.Close)

	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Channels: []string{"sms"}}}
	cfg.Channels = []config.Channel{{Name: "sms", Type: config.ChannelHTTP, URL: sink.URL + "/v1/sms", IDPath: "/id", Concurrency: 4,
		Body: `{"to": {{json .To}}, "text": {{json .Body}}, "id": {{json .ID}}}`}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := ingest.New(ingest.Options{Config: cfg, Store: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Config: cfg, Store: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	inDone, sDone := make(chan error, 1), make(chan error, 1)
	go func() { inDone <- in.Run(ctx) }()
	go func() { sDone <- s.Run(ctx) }()
	defer func() { cancel(); <-inDone; <-sDone }()

	inbox := filepath.Join(cfg.PartnerHome("acme"), "inbox")
	if err := os.MkdirAll(inbox, 0o750); err != nil {
		b.Fatal(err)
	}
	staging := b.TempDir()
	lat := make([]time.Duration, 0, latencyDrops)
	for i := range latencyDrops {
		name := fmt.Sprintf("drop-%02d.csv", i)
		tmp := filepath.Join(staging, name)
		if err := os.WriteFile(tmp, fmt.Appendf(nil, "phone,message\n+35191%07d,latency drop %d\n", i, i), 0o640); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
			b.Fatal(err)
		}
		in.FileComplete("acme", "inbox/"+name)
		select {
		case at := <-arrived:
			lat = append(lat, at.Sub(start))
		case <-time.After(30 * time.Second):
			b.Fatalf("drop %d not delivered within 30s", i)
		}
	}
	slices.Sort(lat)
	pct := func(p int) time.Duration { return lat[(len(lat)*p+99)/100-1] }
	b.ReportMetric(float64(pct(50))/1e6, "p50_ms")
	b.ReportMetric(float64(pct(99))/1e6, "p99_ms")
	b.ReportMetric(float64(lat[0])/1e6, "min_ms")
}
