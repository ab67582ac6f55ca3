package admin

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dropgate/dropgate/diskspace"
	"github.com/dropgate/dropgate/store"
)

// Storage is the data folder's free-space watermark
// (diskspace.Watermark).
type Storage interface {
	// Status reads free space against the watermark (cached ~1 s).
	Status() diskspace.Status
}

// retryAfterStorage is the Retry-After, in seconds, of a send refused for
// lack of storage space.
const retryAfterStorage = "60"

// checkStorage refuses a send while storage is below the watermark, or
// when storing it failed on a full disk: 507 Insufficient Storage with
// Retry-After, and nothing queued.
func (s *Server) checkStorage(w http.ResponseWriter, err error) error {
	msg := ""
	if err != nil {
		if !store.IsDiskFull(err) {
			return err
		}
		msg = "the server's disk is full; nothing was queued; try again later"
	} else if s.opts.Storage != nil {
		if st := s.opts.Storage.Status(); st.Low {
			msg = st.Reason + "; nothing was queued"
		}
	}
	if msg == "" {
		return nil
	}
	w.Header().Set("Retry-After", retryAfterStorage)
	return &Error{Status: http.StatusInsufficientStorage, Code: "insufficient_storage", Message: msg}
}

// notReady returns why the server is not ready, or "".
func (s *Server) notReady() string {
	var why []string
	if s.opts.Storage != nil {
		if st := s.opts.Storage.Status(); st.Low {
			why = append(why, st.Reason)
		}
	}
	if s.opts.Degraded != nil {
		if d := s.opts.Degraded(); d != "" {
			why = append(why, d)
		}
	}
	return strings.Join(why, "; ")
}

// storageCollector exports the watermark: whether space is low, free
// space and the watermark itself.
type storageCollector struct {
	storage            Storage
	low, free, minFree *prometheus.Desc
}

func newStorageCollector(st Storage) *storageCollector {
	return &storageCollector{
		storage: st,
		low:     prometheus.NewDesc("dropgate_storage_low", "1 while the data folder's free space is below [storage] min_free: uploads and API sends are refused, ingest waits.", nil, nil),
		free:    prometheus.NewDesc("dropgate_storage_free_bytes", "Free space of the data folder's filesystem.", nil, nil),
		minFree: prometheus.NewDesc("dropgate_storage_min_free_bytes", "The free-space watermark ([storage] min_free) in bytes.", nil, nil),
	}
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.low
	ch <- c.free
	ch <- c.minFree
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.storage.Status()
	low := 0.0
	if st.Low {
		low = 1
	}
	ch <- prometheus.MustNewConstMetric(c.low, prometheus.GaugeValue, low)
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(st.Free))
	ch <- prometheus.MustNewConstMetric(c.minFree, prometheus.GaugeValue, float64(st.MinFree))
}
