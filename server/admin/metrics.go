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
	logger   *slog.Logger
	files    *prometheus.Desc
	jobs     *prometheus.Desc
	messages *prometheus.Desc
	up       *prometheus.Desc
}

var _ prometheus.Collector = (*storeCollector)(nil)

func newStoreCollector(st *store.Store, logger *slog.Logger) *storeCollector {
	return &storeCollector{
		store:    st,
		logger:   logger,
		files:    prometheus.NewDesc("dropgate_files", "Files received, by status.", []string{"status"}, nil),
		jobs:     prometheus.NewDesc("dropgate_jobs", "Jobs, by status.", []string{"status"}, nil),
		messages: prometheus.NewDesc("dropgate_messages", "Messages, by channel and status.", []string{"channel", "status"}, nil),
		up:       prometheus.NewDesc("dropgate_store_up", "1 when the database answered the scrape's queries.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.files
	ch <- c.jobs
	ch <- c.messages
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStoreCollector(s.opts.Store, s.logger),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if s.opts.Storage != nil {
		reg.MustRegister(newStorageCollector(s.opts.Storage))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)})
}
