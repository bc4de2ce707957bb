package origin

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"marquee/token"
)

// Stream modes (label values of mode).
const (
	modeStream = "stream"
	modeDirect = "direct"
	modePart   = "part"
)

// Close reasons (label values of reason).
const (
	reasonComplete   = "complete"      // segment ended cleanly
	reasonClientGone = "client_gone"   // the viewer went away
	reasonSlow       = "slow"          // the viewer fell too far behind
	reasonWriteError = "write_error"   // a write failed or timed out
	reasonDrain      = "drain"         // ended by shutdown drain
	reasonAborted    = "aborted"       // the segment was aborted
	reasonRefused    = "refused"       // answered with an error before streaming
	reasonExpired    = "token_expired" // direct mode on a tokened route: the token expired
)

// Refusal reasons (label values of marquee_http_refused_total).
const (
	refusedPath     = "path"     // a non-canonical path (400)
	refusedMethod   = "method"   // a method other than GET, HEAD, OPTIONS (405)
	refusedBody     = "body"     // a GET, HEAD or OPTIONS request with a body (400)
	refusedWindow   = "window"   // a segment outside the servable window (404 not started, 410 no longer retained)
	refusedProtocol = "protocol" // stream mode over HTTP/1.0, which cannot tell a cut response from a whole one (400)
)

var (
	allRefusals = []string{refusedPath, refusedMethod, refusedBody, refusedWindow, refusedProtocol}
	allModes    = []string{modeStream, modeDirect, modePart}
	allReasons  = []string{reasonComplete, reasonClientGone, reasonSlow, reasonWriteError, reasonDrain, reasonAborted, reasonRefused, reasonExpired}
	allKinds    = []string{"live", "held", "finished"}
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
	refused        *prometheus.CounterVec
	handedOff      *prometheus.CounterVec
	tokenRefused   *prometheus.CounterVec
	conns          prometheus.Gauge
	connsRefused   prometheus.Counter
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
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_refused_total",
			Help: "Requests refused before any route logic, or outside what the origin can serve, by reason (path: non-canonical path; method; body: GET/HEAD/OPTIONS with a body; window: segment not started or no longer retained; protocol: stream mode over HTTP/1.0).",
		}, []string{"reason"}),
		handedOff: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_handed_off_total",
			Help: "Streaming responses handed off by their handler to the shared writers after their first batch (HTTP/1.1, MARQUEE_HANDOFF), by mode (stream, direct).",
		}, []string{"mode"}),
		tokenRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_token_refused_total",
			Help: "Requests refused for their token (MARQUEE_PROTECTED_FEEDS), by reason: missing (a protected feed's un-tokened route), malformed, unknown_key, bad_mac, expired, not_yet_valid (403); public_feed (a public feed's tokened route, 404).",
		}, []string{"reason"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_http_connections",
			Help: "Connections open on listeners wrapped by origin.LimitListener.",
		}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_http_connections_refused_total",
			Help: "Connections closed at once because origin.LimitListener's cap was reached.",
		}),
	}
	for _, r := range allRefusals {
		m.refused.WithLabelValues(r)
	}
	for _, r := range append(slices.Clone(token.Reasons), tokenPublicFeed) {
		m.tokenRefused.WithLabelValues(r)
	}
	for _, mode := range []string{modeStream, modeDirect} {
		m.handedOff.WithLabelValues(mode)
	}
	for _, mode := range allModes {
		m.openStreams.WithLabelValues(mode)
		m.bytesWritten.WithLabelValues(mode)
		m.slowClosed.WithLabelValues(mode)
		for _, r := range allReasons {
			m.streamClosed.WithLabelValues(mode, r)
		}
	}
	reg.MustRegister(m.openStreams, m.segmentStarted, m.bytesWritten, m.streamClosed, m.slowClosed, m.requests, m.partResponses, m.partHeld, m.refused, m.handedOff, m.tokenRefused, m.conns, m.connsRefused)
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
