package origin

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"marquee/segmenter"
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
)

// Metrics are the HTTP layer's metrics, registered on an injected registry.
// The series labelled by feed exist for live feeds only: give FeedRemoved
// to the hub's OnRemove.
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

	mu    sync.Mutex             // guards feeds; taken inside segmenter.Hub's lock (FeedRemoved)
	feeds map[string]*feedSeries // by feed name: the feeds whose series exist
}

// NewMetrics creates the HTTP metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		feeds: make(map[string]*feedSeries),
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

// Kinds of stream-mode segment responses (indexes into segmentKinds).
const (
	segmentLive     = iota // joined an open segment
	segmentHeld            // requested early and held until it started
	segmentFinished        // a closed segment served whole
)

// Label values of kind in the per-feed response counters.
var (
	segmentKinds = [...]string{segmentLive: "live", segmentHeld: "held", segmentFinished: "finished"}
	partKinds    = [...]string{"part", "upto"}
)

// feedSeries are one live feed's series of the vectors labelled by feed,
// resolved once. A removed feed's are deleted from the vectors (FeedRemoved),
// so that feeds coming and going do not grow the exposition without bound.
type feedSeries struct {
	f        *segmenter.Feed
	segments [len(segmentKinds)]prometheus.Counter
	parts    [len(partKinds)]prometheus.Counter
	held     [len(partKinds)]prometheus.Counter
}

// seriesLocked returns the series of f, creating them the first time, or
// nil when f is gone (a request that resolved the feed just before the hub
// removed it): a removed feed never gets series again, and a feed of the
// same name made later gets fresh ones. Called with m.mu held.
func (m *Metrics) seriesLocked(f *segmenter.Feed) *feedSeries {
	fs := m.feeds[f.Name()]
	if fs != nil && fs.f == f {
		return fs
	}
	if f.Gone() {
		return nil
	}
	name := f.Name()
	fs = &feedSeries{f: f}
	for i, k := range segmentKinds {
		fs.segments[i] = m.segmentStarted.WithLabelValues(name, k)
	}
	for i, k := range partKinds {
		fs.parts[i] = m.partResponses.WithLabelValues(name, k)
		fs.held[i] = m.partHeld.WithLabelValues(name, k)
	}
	m.feeds[name] = fs
	return fs
}

// feedSeen pre-creates the series of f (all kinds at 0).
func (m *Metrics) feedSeen(f *segmenter.Feed) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seriesLocked(f)
}

// segmentResponse counts a stream-mode segment response of f of kind
// (segmentLive, segmentHeld, segmentFinished).
func (m *Metrics) segmentResponse(f *segmenter.Feed, kind int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fs := m.seriesLocked(f); fs != nil {
		fs.segments[kind].Inc()
	}
}

// partResponse counts a parts-mode response of f (kind part or upto), and
// whether it was held.
func (m *Metrics) partResponse(f *segmenter.Feed, upto, held bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fs := m.seriesLocked(f)
	if fs == nil {
		return
	}
	i := 0
	if upto {
		i = 1
	}
	fs.parts[i].Inc()
	if held {
		fs.held[i].Inc()
	}
}

// FeedRemoved deletes every series labelled with the feed name (give it to
// segmenter.Hub.OnRemove). Its counts are gone with it: a feed of the same
// name made later starts from zero.
func (m *Metrics) FeedRemoved(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.feeds, name)
	l := prometheus.Labels{"feed": name}
	for _, v := range m.byFeed() {
		v.DeletePartialMatch(l)
	}
}

// byFeed returns the vectors labelled by feed.
func (m *Metrics) byFeed() []*prometheus.CounterVec {
	return []*prometheus.CounterVec{m.segmentStarted, m.partResponses, m.partHeld}
}
