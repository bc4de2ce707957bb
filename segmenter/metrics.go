package segmenter

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the segmenter's Prometheus metrics. Create them with
// NewMetrics on an injected registry; a nil *Metrics records nothing.
type Metrics struct {
	rotations  prometheus.Counter
	keepalives prometheus.Counter
	updates    prometheus.Counter
	aborted    prometheus.Counter
	feeds      prometheus.Gauge
	logBytes   prometheus.Histogram
}

// NewMetrics creates and registers the segmenter's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_segment_rotations_total",
			Help: "Segments closed with a next event (one per feed per segment boundary).",
		}),
		keepalives: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_segment_keepalives_total",
			Help: "Keepalive comments appended to segment logs.",
		}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_segment_updates_total",
			Help: "Updates folded into feed state and appended to segment logs.",
		}),
		aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_segment_aborted_total",
			Help: "Open segments aborted (not finished) at shutdown.",
		}),
		feeds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_feeds",
			Help: "Number of feeds known to the segmenter.",
		}),
		logBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "marquee_segment_log_bytes",
			Help:    "Size of segment logs when they close.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
	}
	reg.MustRegister(m.rotations, m.keepalives, m.updates, m.aborted, m.feeds, m.logBytes)
	return m
}

func (m *Metrics) rotated(size int) {
	if m != nil {
		m.rotations.Inc()
		m.logBytes.Observe(float64(size))
	}
}

func (m *Metrics) keepalive() {
	if m != nil {
		m.keepalives.Inc()
	}
}

func (m *Metrics) updated() {
	if m != nil {
		m.updates.Inc()
	}
}

func (m *Metrics) abortedSegment() {
	if m != nil {
		m.aborted.Inc()
	}
}

func (m *Metrics) setFeeds(n int) {
	if m != nil {
		m.feeds.Set(float64(n))
	}
}
