package origin

import "github.com/prometheus/client_golang/prometheus"

// Stream modes (label values of mode).
const (
	modeStream = "stream"
	modeDirect = "direct"
	modePart   = "part"
)

// Close reasons (label values of reason).
const (
	reasonComplete   = "complete"    // segment ended cleanly
	reasonClientGone = "client_gone" // the viewer went away
	reasonSlow       = "slow"        // the viewer fell too far behind
	reasonWriteError = "write_error" // a write failed or timed out
	reasonDrain      = "drain"       // ended by shutdown drain
	reasonAborted    = "aborted"     // the segment was aborted
	reasonRefused    = "refused"     // answered with an error before streaming
)

var (
	allModes   = []string{modeStream, modeDirect, modePart}
	allReasons = []string{reasonComplete, reasonClientGone, reasonSlow, reasonWriteError, reasonDrain, reasonAborted, reasonRefused}
	allKinds   = []string{"live", "held", "finished"}
)

// Metrics are the HTTP layer's metrics, registered on an injected registry.
type Metrics struct {
	openStreams    *prometheus.GaugeVec
	segmentStarted *prometheus.CounterVec
	bytesWritten   *prometheus.CounterVec
	streamClosed   *prometheus.CounterVec
	slowClosed     *prometheus.CounterVec
	requests       *prometheus.CounterVec
	partResponses  *prometheus.CounterVec
	partHeld       *prometheus.CounterVec
}

// NewMetrics creates the HTTP metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		openStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "marquee_http_open_streams",
			Help: "Streaming responses in progress, by mode (stream, direct) and held part requests (part).",
		}, []string{"mode"}),
		segmentStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_segment_responses_total",
			Help: "Stream-mode segment responses started, by feed and kind (live: joined an open segment; held: requested early and held; finished: a closed segment served whole).",
		}, []string{"feed", "kind"}),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_bytes_written_total",
			Help: "Body bytes written by streaming and part responses, by mode.",
		}, []string{"mode"}),
		streamClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_streams_closed_total",
			Help: "Streaming responses ended, by mode and reason.",
		}, []string{"mode", "reason"}),
		slowClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_slow_readers_closed_total",
			Help: "Viewers closed because they could not keep up (too far behind or write timeout), by mode.",
		}, []string{"mode"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_requests_total",
			Help: "HTTP requests by route pattern and status class.",
		}, []string{"route", "code"}),
		partResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_part_responses_total",
			Help: "Parts-mode responses answered, by feed and kind (part, upto).",
		}, []string{"feed", "kind"}),
		partHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_part_held_total",
			Help: "Parts-mode responses that were held until their part finished (blocking reload), by feed and kind.",
		}, []string{"feed", "kind"}),
	}
	for _, mode := range allModes {
		m.openStreams.WithLabelValues(mode)
		m.bytesWritten.WithLabelValues(mode)
		m.slowClosed.WithLabelValues(mode)
		for _, r := range allReasons {
			m.streamClosed.WithLabelValues(mode, r)
		}
	}
	reg.MustRegister(m.openStreams, m.segmentStarted, m.bytesWritten, m.streamClosed, m.slowClosed, m.requests, m.partResponses, m.partHeld)
	return m
}

// feedCreated pre-creates the per-feed label values.
func (m *Metrics) feedSeen(feed string) {
	for _, k := range allKinds {
		m.segmentStarted.WithLabelValues(feed, k)
	}
	for _, k := range []string{"part", "upto"} {
		m.partResponses.WithLabelValues(feed, k)
		m.partHeld.WithLabelValues(feed, k)
	}
}
