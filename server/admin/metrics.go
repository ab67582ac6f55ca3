package admin

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dropgate/dropgate/store"
)

// storeCollector reads the store's status counts at scrape time, so the
// numbers are the database's truth rather than counters that a restart
// would reset.
type storeCollector struct {
	store    *store.Store
	channels []string
	logger   *slog.Logger
	files    *prometheus.Desc
	jobs     *prometheus.Desc
	messages *prometheus.Desc
	queue    *prometheus.Desc
	up       *prometheus.Desc
}

var _ prometheus.Collector = (*storeCollector)(nil)

func newStoreCollector(st *store.Store, channels []string, logger *slog.Logger) *storeCollector {
	return &storeCollector{
		store:    st,
		channels: channels,
		logger:   logger,
		files:    prometheus.NewDesc("dropgate_files", "Files received, by status.", []string{"status"}, nil),
		jobs:     prometheus.NewDesc("dropgate_jobs", "Jobs, by status.", []string{"status"}, nil),
		messages: prometheus.NewDesc("dropgate_messages", "Messages, by channel and status.", []string{"channel", "status"}, nil),
		queue:    prometheus.NewDesc("dropgate_queue_depth", "Messages waiting to be sent (queued, not in flight), by channel.", []string{"channel"}, nil),
		up:       prometheus.NewDesc("dropgate_store_up", "1 when the database answered the scrape's queries.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.files
	ch <- c.jobs
	ch <- c.messages
	ch <- c.queue
	ch <- c.up
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counts, err := c.store.StatusCounts(ctx)
	if err != nil {
		c.logger.Warn("metrics: cannot read status counts", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	queued := map[string]float64{}
	for _, ch := range c.channels {
		queued[ch] = 0
	}
	for _, sc := range counts {
		if sc.Kind == "messages" && sc.Status == store.MsgQueued {
			queued[sc.Channel] += float64(sc.Count)
		}
	}
	for name, n := range queued {
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, n, name)
	}
	for _, sc := range counts {
		switch sc.Kind {
		case "files":
			ch <- prometheus.MustNewConstMetric(c.files, prometheus.GaugeValue, float64(sc.Count), sc.Status)
		case "jobs":
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(sc.Count), sc.Status)
		case "messages":
			ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(sc.Count), sc.Channel, sc.Status)
		}
	}
}

// metricsHandler serves Prometheus metrics from a registry of this server's
// own (no global registry: two daemons in one test process stay apart).
func (s *Server) metricsHandler() http.Handler {
	m := s.opts.Metrics
	if m == nil {
		m = NewMetrics(s.opts.Config)
	}
	var channels []string
	for _, ch := range s.opts.Config.Channels {
		channels = append(channels, ch.Name)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStoreCollector(s.opts.Store, channels, s.logger),
		filesCollector{m: m, st: s.opts.Store, logger: s.logger},
		newRunsCollector(s.opts.Store, s.logger),
		m.uploads, m.uploadBytes, m.messages, m.retries, m.latency, m.provider, m.loginFailures, m.bansTotal,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dropgate_bans", Help: "Addresses banned now by the login defender."}, func() float64 {
			if s.opts.Bans == nil {
				return 0
			}
			return float64(len(s.opts.Bans()))
		}),
		sessionsCollector{m: m, desc: prometheus.NewDesc("dropgate_open_sessions", "Open SFTP and FTP sessions, by protocol.", []string{"protocol"}, nil)},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if s.opts.Storage != nil {
		reg.MustRegister(newStorageCollector(s.opts.Storage))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)})
}

// sessionsCollector reports the file servers' open sessions.
type sessionsCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (c sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.Sessions == nil {
		return
	}
	for proto, n := range c.m.Sessions() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), proto)
	}
}
