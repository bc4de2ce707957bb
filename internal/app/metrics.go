package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"marquee/segmenter"
)

// hubCollector exposes the segmenter's atomic counters (segmenter imports
// no metrics library) as Prometheus metrics, read at scrape time.
type hubCollector struct {
	hub                                            *segmenter.Hub
	rotations, keepalives, updates, aborted, feeds *prometheus.Desc
	loaded, logBytes, reloads                      *prometheus.Desc
	stateBytes, feedStateBytes, evicted, expired   *prometheus.Desc
	conflated, parts                               *prometheus.Desc
}

var _ prometheus.Collector = (*hubCollector)(nil)

func newHubCollector(h *segmenter.Hub) *hubCollector {
	return &hubCollector{
		hub:            h,
		rotations:      prometheus.NewDesc("marquee_segment_rotations_total", "Segments closed with a next event (one per feed per segment boundary).", nil, nil),
		keepalives:     prometheus.NewDesc("marquee_segment_keepalives_total", "Keepalive comments appended to segment logs.", nil, nil),
		updates:        prometheus.NewDesc("marquee_segment_updates_total", "Updates folded into feed state and appended to segment logs (but those counted in marquee_updates_conflated_total).", nil, nil),
		aborted:        prometheus.NewDesc("marquee_segment_aborted_total", "Open segments aborted (not finished) at shutdown.", nil, nil),
		feeds:          prometheus.NewDesc("marquee_feeds", "Number of feeds known to the segmenter.", nil, nil),
		loaded:         prometheus.NewDesc("marquee_segmenter_loaded", "1 once the stored state is loaded and segments open, else 0.", nil, nil),
		logBytes:       prometheus.NewDesc("marquee_segment_log_bytes", "Size of segment logs when they close.", nil, nil),
		reloads:        prometheus.NewDesc("marquee_segmenter_reloads_total", "State reloads completed (the source replayed the stream after a gap or a recreated stream); each wrote a snapshot into every open segment.", nil, nil),
		stateBytes:     prometheus.NewDesc("marquee_state_bytes", "Size of every feed's state together (keys plus values), capped by MARQUEE_MAX_STATE_BYTES.", nil, nil),
		feedStateBytes: prometheus.NewDesc("marquee_feed_state_bytes", "Size of a feed's state (keys plus values), capped by MARQUEE_MAX_FEED_BYTES.", []string{"feed"}, nil),
		evicted:        prometheus.NewDesc("marquee_feeds_evicted_total", "Feeds with keys removed because they were idle for MARQUEE_FEED_IDLE_EVICT when a new feed (or bytes) needed room.", nil, nil),
		expired:        prometheus.NewDesc("marquee_feeds_expired_total", "Feeds without keys removed: empty for the retention plus a segment, or at once to make room for a new feed.", nil, nil),
		parts:          prometheus.NewDesc("marquee_segment_parts", "Parts per segment (MARQUEE_SEGMENT_LENGTH / MARQUEE_PART_LENGTH): with marquee_segment_rotations_total, what parts-mode collapse is measured against.", nil, nil),
		conflated:      prometheus.NewDesc("marquee_updates_conflated_total", "Updates of conflated feeds (MARQUEE_CONFLATE) folded into the state but never written as a frame: replaced by a later update of the same key in the same interval, or held by a snapshot written first.", nil, nil),
	}
}

func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rotations, c.keepalives, c.updates, c.aborted, c.feeds, c.loaded, c.logBytes, c.reloads, c.stateBytes, c.feedStateBytes, c.evicted, c.expired, c.conflated, c.parts} {
		ch <- d
	}
}

func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	ch <- prometheus.MustNewConstMetric(c.rotations, prometheus.CounterValue, float64(st.Rotations))
	ch <- prometheus.MustNewConstMetric(c.keepalives, prometheus.CounterValue, float64(st.Keepalives))
	ch <- prometheus.MustNewConstMetric(c.updates, prometheus.CounterValue, float64(st.Updates))
	ch <- prometheus.MustNewConstMetric(c.aborted, prometheus.CounterValue, float64(st.Aborted))
	ch <- prometheus.MustNewConstMetric(c.feeds, prometheus.GaugeValue, float64(st.Feeds))
	ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(st.Reloads))
	ch <- prometheus.MustNewConstMetric(c.stateBytes, prometheus.GaugeValue, float64(st.StateBytes))
	ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(st.FeedsEvicted))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(st.FeedsExpired))
	ch <- prometheus.MustNewConstMetric(c.conflated, prometheus.CounterValue, float64(st.Conflated))
	ch <- prometheus.MustNewConstMetric(c.parts, prometheus.GaugeValue, float64(c.hub.Config().Parts()))
	for _, name := range c.hub.Feeds() {
		if f, ok := c.hub.Feed(name); ok {
			ch <- prometheus.MustNewConstMetric(c.feedStateBytes, prometheus.GaugeValue, float64(f.StateBytes()), name)
		}
	}
	loaded := 0.0
	if st.Loaded {
		loaded = 1
	}
	ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, loaded)
	buckets := make(map[float64]uint64, len(segmenter.LogSizeBuckets))
	for i, ub := range segmenter.LogSizeBuckets {
		buckets[ub] = st.LogBytes.Buckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.logBytes, st.LogBytes.Count, st.LogBytes.Sum, buckets)
}
