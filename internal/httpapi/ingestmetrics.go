package httpapi

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// ingestMetrics count what the ingestion routes do with events. Labels are
// bounded: the source kind (write_key or token), the outcome, and for
// rejected events the field that failed, from a fixed list.
type ingestMetrics struct {
	events   *prometheus.CounterVec
	batch    *prometheus.HistogramVec
	duration *prometheus.HistogramVec
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	m := &ingestMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_ingest_events_total",
			Help: "Events received on the ingestion routes by source kind and outcome (accepted, duplicate, suppressed, rejected); reason is the field a rejected event failed on.",
		}, []string{"source_kind", "outcome", "reason"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_ingest_batch_events",
			Help:    "Events per ingestion request, by source kind.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000},
		}, []string{"source_kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_ingest_duration_seconds",
			Help:    "Time ingesting one request's valid events (raw zone and identity resolution), by source kind.",
			Buckets: prometheus.DefBuckets,
		}, []string{"source_kind"}),
	}
	reg.MustRegister(m.events, m.batch, m.duration)
	return m
}

// rejectReasons are the reason label's values; another field counts as
// "other", an error about the whole event (not an object, too large) as
// "malformed".
var rejectReasons = []string{
	"type", "messageId", "timestamp", "sentAt", "userId", "anonymousId", "previousId", "groupId",
	"event", "name", "traits", "properties", "context", "integrations",
}

// rejectReason maps an EventError field to a bounded label value: its
// first segment ("properties" for "properties.plan" or "/properties/p").
func rejectReason(field string) string {
	f := strings.TrimPrefix(field, "/")
	if i := strings.IndexAny(f, "./["); i >= 0 {
		f = f[:i]
	}
	if f == "" {
		return "malformed"
	}
	for _, r := range rejectReasons {
		if r == f {
			return r
		}
	}
	return "other"
}

// observe records one ingestion request: n events received, rejected
// listing those refused before ingesting, res what Ingest did (when err is
// nil, or nothing was stored) and how long it took.
func (m *ingestMetrics) observe(kind string, n int, took time.Duration, res profiles.IngestResult, rejected []EventError, err error) {
	m.batch.WithLabelValues(kind).Observe(float64(n))
	m.duration.WithLabelValues(kind).Observe(took.Seconds())
	for _, e := range rejected {
		m.events.WithLabelValues(kind, "rejected", rejectReason(e.Field)).Inc()
	}
	if err != nil {
		return
	}
	m.events.WithLabelValues(kind, "accepted", "").Add(float64(res.Accepted))
	m.events.WithLabelValues(kind, "duplicate", "").Add(float64(res.Duplicates))
	m.events.WithLabelValues(kind, "suppressed", "").Add(float64(res.Suppressed))
}
