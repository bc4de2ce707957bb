package feed

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"marquee/segmenter"
)

// Metrics are the feed and NATS metrics. Make one per process with
// NewMetrics, pass it to Connect and NewSource, and give FeedRemoved to the
// hub's OnRemove. Safe for concurrent use.
type Metrics struct {
	accepted    *prometheus.CounterVec         // {feed}; live feeds only (FeedRemoved), so bounded by the segmenter's max feeds
	rejected    [numReasons]prometheus.Counter // by Reason; nil for ReasonNone
	connected   prometheus.Gauge
	reconnects  prometheus.Counter
	disconnects prometheus.Counter
	loaded      prometheus.Gauge
	lastSeq     prometheus.Gauge
	pending     prometheus.Gauge

	// JetStream health (zero with core NATS).
	skipped       prometheus.Counter
	reloads       [numReloadReasons]prometheus.Counter // by ReloadReason; nil for ReloadNone
	restarts      prometheus.Counter
	stalled       prometheus.Gauge
	streamMissing prometheus.Gauge
	lastProgress  prometheus.Gauge

	mu    sync.Mutex                    // guards feeds; taken inside segmenter.Hub's lock (FeedRemoved)
	feeds map[string]prometheus.Counter // accepted's series by feed: the feeds that have one
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, useful in tests). Every rejection and reload reason is
// pre-created with 0.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		feeds: make(map[string]prometheus.Counter),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_feed_messages_accepted_total",
			Help: "Messages applied to a feed, by feed. Feeds are capped by the segmenter's maximum number of feeds.",
		}, []string{"feed"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_nats_connected",
			Help: "1 while the NATS connection is up, else 0.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_nats_reconnects_total",
			Help: "Successful reconnects to NATS.",
		}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_nats_disconnects_total",
			Help: "Losses of the NATS connection.",
		}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_feed_loaded",
			Help: "1 once the source has caught up with the stored state (JetStream; 0 again while a reload replays it) or subscribed (core NATS), else 0.",
		}),
		lastSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_feed_last_sequence",
			Help: "Sequence of the last message handled: the JetStream stream sequence or the core NATS process-local counter.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_feed_pending_messages",
			Help: "Messages in the JetStream stream not yet delivered to this consumer, as of the last message (JetStream only).",
		}),
	}
	m.skipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marquee_feed_skipped_messages_total",
		Help: "JetStream stream sequences skipped between two messages handled while following the stream by sequence: messages removed (limits, deletes, purges) before this replica read them.",
	})
	m.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marquee_feed_consumer_restarts_total",
		Help: "JetStream consumers re-created after the previous one failed, stalled or lost messages in flight (reloads not included).",
	})
	m.stalled = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "marquee_feed_stalled",
		Help: "1 while the JetStream source has made no progress for longer than the stall timeout although the stream holds messages it has not got, or the JetStream API does not answer, else 0.",
	})
	m.streamMissing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "marquee_feed_stream_missing",
		Help: "1 while the JetStream stream does not exist, else 0.",
	})
	m.lastProgress = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "marquee_feed_last_progress_timestamp_seconds",
		Help: "Unix time at which the JetStream source last handled a message or found nothing left to read in the stream.",
	})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marquee_feed_reloads_total",
		Help: "Complete replays of the stored state after the first, by reason: gap (resumed past removed messages), recreated (the stream was deleted and created again).",
	}, []string{"reason"})
	for _, r := range ReloadReasons() {
		m.reloads[r] = reloads.WithLabelValues(r.String())
	}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marquee_feed_messages_rejected_total",
		Help: "Messages dropped, by reason.",
	}, []string{"reason"})
	for _, r := range Reasons() {
		m.rejected[r] = rejected.WithLabelValues(r.String())
	}
	if reg != nil {
		reg.MustRegister(m.accepted, rejected, m.connected, m.reconnects, m.disconnects, m.loaded, m.lastSeq, m.pending,
			m.skipped, reloads, m.restarts, m.stalled, m.streamMissing, m.lastProgress)
	}
	return m
}

func (m *Metrics) reject(r Reason) {
	if r > ReasonNone && r < numReasons {
		m.rejected[r].Inc()
	}
}

// accept counts a message applied to the named feed. The feed's series is
// made on its first message; feeds (nil: feeds never go away) looks the
// feed up then, so that a feed the hub removed meanwhile gets no series
// again (FeedRemoved ran, or will run once this returns). The look-up is
// made without m.mu, which FeedRemoved takes inside the hub's lock.
func (m *Metrics) accept(name string, feeds func(string) (*segmenter.Feed, bool)) {
	m.mu.Lock()
	c := m.feeds[name]
	if c != nil {
		c.Inc()
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	var f *segmenter.Feed
	if feeds != nil {
		var ok bool
		if f, ok = feeds(name); !ok {
			return
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c = m.feeds[name]; c == nil {
		if f != nil && f.Gone() {
			return
		}
		c = m.accepted.WithLabelValues(name)
		m.feeds[name] = c
	}
	c.Inc()
}

// FeedRemoved deletes the series labelled with the feed name (give it to
// segmenter.Hub.OnRemove). Its count is gone with it: a feed of the same
// name made later starts from zero.
func (m *Metrics) FeedRemoved(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.feeds, name)
	m.accepted.DeletePartialMatch(prometheus.Labels{"feed": name})
}
