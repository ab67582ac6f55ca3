package admin

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Metrics are dropgate's counters and histograms. One is made per daemon
// (no global registry: two daemons in one test process stay apart) and
// handed to the parts that feed it: the sender (as its Observer), the
// authenticator (OnLoginFailed) and the file servers' notifier (Uploads).
// Files are followed in the database, so ingest needs no hook.
type Metrics struct {
	cfg *config.Config

	uploads        *prometheus.CounterVec
	uploadBytes    *prometheus.CounterVec
	files          *prometheus.CounterVec
	rows           prometheus.Counter
	ingestDuration prometheus.Histogram
	messages       *prometheus.CounterVec
	retries        *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	provider       *prometheus.HistogramVec
	loginFailures  *prometheus.CounterVec
	bansTotal      *prometheus.CounterVec

	mu       sync.Mutex
	protocol map[string]string // partner/rel → protocol of an upload not yet settled
	lastFile int64             // every file up to this id has been counted
	started  bool
	// Sessions, when set, reports open sessions per protocol.
	Sessions func() map[string]int
}

// NewMetrics makes the metrics of one daemon.
func NewMetrics(cfg *config.Config) *Metrics {
	secs := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600}
	return &Metrics{
		cfg:      cfg,
		protocol: map[string]string{},
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_uploads_total",
			Help: "Uploads completed through the embedded servers, by protocol."}, []string{"protocol"}),
		uploadBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_upload_bytes_total",
			Help: "Bytes of completed uploads, by protocol."}, []string{"protocol"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_files_total",
			Help: "Files settled by ingest, by protocol (sftp, ftp, or other for files written by anything else), status (queued, rejected) and reason."},
			[]string{"protocol", "status", "reason"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "dropgate_rows_ingested_total",
			Help: "CSV rows turned into messages."}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dropgate_ingest_duration_seconds",
			Help: "Time from a file being picked up to its job queued or its rejection.", Buckets: secs}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_messages_total",
			Help: "Delivery outcomes, by channel and outcome (sent, failed, retry, suppressed, expired, released)."}, []string{"channel", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_retries_total",
			Help: "Deliveries that failed transiently and were queued again, by channel."}, []string{"channel"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dropgate_delivery_latency_seconds",
			Help: "Time from a message being queued to the provider accepting it, by channel.", Buckets: secs}, []string{"channel"}),
		provider: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dropgate_provider_response_seconds",
			Help: "Time the provider took to answer a delivery, by channel and result (accepted, error).", Buckets: prometheus.DefBuckets},
			[]string{"channel", "result"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_login_failures_total",
			Help: "Failed password logins, by protocol."}, []string{"protocol"}),
		bansTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropgate_bans_total",
			Help: "Addresses banned by the login defender, by the protocol of the failure that banned them."}, []string{"protocol"}),
	}
}

// ProviderAnswered records a provider call's time (sender.Observer).
func (m *Metrics) ProviderAnswered(channel string, took time.Duration, err error) {
	result := "accepted"
	if err != nil {
		result = "error"
	}
	m.provider.WithLabelValues(channel, result).Observe(took.Seconds())
}

// Delivered records a delivery's outcome (sender.Observer).
func (m *Metrics) Delivered(channel string, c *store.Claim, out store.Outcome) {
	kind := string(out.Kind)
	m.messages.WithLabelValues(channel, kind).Inc()
	switch out.Kind {
	case store.OutcomeRetry:
		m.retries.WithLabelValues(channel).Inc()
	case store.OutcomeSent:
		if !c.AgeFrom.IsZero() {
			m.latency.WithLabelValues(channel).Observe(out.At.Sub(c.AgeFrom).Seconds())
		}
	}
}

// LoginFailed records a failed login (auth.Options.OnLoginFailed).
func (m *Metrics) LoginFailed(protocol string, banned bool) {
	m.loginFailures.WithLabelValues(protocol).Inc()
	if banned {
		m.bansTotal.WithLabelValues(protocol).Inc()
	}
}

// fileNotifier is what the file servers call when an upload is complete.
type fileNotifier interface {
	FileComplete(partner, relPath string)
}

// uploadNotifier counts an upload, remembers its protocol for the file's
// settlement, and passes it on to ingest.
type uploadNotifier struct {
	m        *Metrics
	protocol string
	next     fileNotifier
}

// FileComplete implements the servers' Notifier.
func (n uploadNotifier) FileComplete(partner, relPath string) {
	n.count(partner, relPath)
	n.next.FileComplete(partner, relPath)
}

// FileRenamed implements homefs.RenameNotifier: a client's rename of a
// temporary name into place is passed on as such, which complete = rename
// needs (told as FileComplete, it would be held as a plain upload).
func (n uploadNotifier) FileRenamed(partner, relPath string) {
	n.count(partner, relPath)
	if rn, ok := n.next.(interface{ FileRenamed(partner, relPath string) }); ok {
		rn.FileRenamed(partner, relPath)
		return
	}
	n.next.FileComplete(partner, relPath)
}

// count counts an upload and remembers its protocol.
func (n uploadNotifier) count(partner, relPath string) {
	n.m.uploads.WithLabelValues(n.protocol).Inc()
	if fi, err := os.Stat(filepath.Join(n.m.cfg.PartnerHome(partner), filepath.FromSlash(relPath))); err == nil {
		n.m.uploadBytes.WithLabelValues(n.protocol).Add(float64(fi.Size()))
	}
	n.m.mu.Lock()
	if len(n.m.protocol) < 100_000 { // bounded if ingest never settles some
		n.m.protocol[partner+"/"+path.Clean(relPath)] = n.protocol
	}
	n.m.mu.Unlock()
}

// Uploads wraps the notifier a file server calls, so uploads are counted
// by protocol before ingest takes them.
func (m *Metrics) Uploads(protocol string, next fileNotifier) fileNotifier {
	return uploadNotifier{m: m, protocol: protocol, next: next}
}

// followFiles counts the files settled since the last scrape: every file
// above lastFile up to the first one still being ingested.
func (m *Metrics) followFiles(ctx context.Context, st *store.Store) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		id, err := st.MaxFileID(ctx)
		if err != nil {
			return err
		}
		m.lastFile, m.started = id, true
		return nil
	}
	for {
		files, err := st.FilesAfter(ctx, m.lastFile, 1000)
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.Status == store.FileReceived {
				return nil
			}
			key := f.Partner + "/" + path.Clean(f.Name)
			proto := m.protocol[key]
			delete(m.protocol, key)
			if proto == "" {
				proto = "other"
			}
			m.files.WithLabelValues(proto, f.Status, rejectReason(f)).Inc()
			if f.Status == store.FileQueued {
				m.rows.Add(float64(f.RowsTotal - f.RowsBad))
			}
			m.ingestDuration.Observe(f.UpdatedAt.Sub(f.CreatedAt).Seconds())
			m.lastFile = f.ID
		}
		if len(files) < 1000 {
			return nil
		}
	}
}

// rejectReason sorts a file's error into a few reasons, so the label keeps
// a small number of values.
func rejectReason(f store.File) string {
	if f.Status != store.FileRejected {
		return ""
	}
	e := strings.ToLower(f.Error)
	for _, r := range []struct{ word, reason string }{
		{"already", "duplicate"}, {"duplicate", "duplicate"}, {"cut off", "cut_off"}, {"encoding", "encoding"},
		{"utf-8", "encoding"}, {"header", "header"}, {"template", "template"}, {"larger", "too_large"},
		{"too many", "too_large"}, {"line", "rows"}, {"row", "rows"},
	} {
		if strings.Contains(e, r.word) {
			return r.reason
		}
	}
	return "other"
}

// filesCollector follows the files table at each scrape and then collects
// the counters it feeds.
type filesCollector struct {
	m      *Metrics
	st     *store.Store
	logger interface{ Warn(string, ...any) }
}

func (c filesCollector) Describe(ch chan<- *prometheus.Desc) {
	c.m.files.Describe(ch)
	c.m.rows.Describe(ch)
	c.m.ingestDuration.Describe(ch)
}

func (c filesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.m.followFiles(ctx, c.st); err != nil {
		c.logger.Warn("metrics: cannot follow files", "err", err)
	}
	c.m.files.Collect(ch)
	c.m.rows.Collect(ch)
	c.m.ingestDuration.Collect(ch)
}
