package segmenter

import "sync/atomic"

// LogSizeBuckets are the upper bounds (bytes) of the segment-log size
// distribution in Stats.LogBytes: 1 KiB × 4^i for i = 0..9.
var LogSizeBuckets = func() []float64 {
	b := make([]float64, 10)
	v := 1024.0
	for i := range b {
		b[i] = v
		v *= 4
	}
	return b
}()

// Stats are the hub's counters. The segmenter counts with atomics and
// imports no metrics library; the wiring exposes them through a collector.
type Stats struct {
	Rotations  uint64 // segments closed with a next event
	Keepalives uint64 // keepalive comments appended to segment logs
	Updates    uint64 // updates folded into state (appended to the open segment when live, but those Conflated)
	Aborted    uint64 // open segments aborted at shutdown
	Reloads    uint64 // reloads of the whole state completed (Reload, then Loaded)
	// Conflated counts updates folded into a conflated feed's state whose
	// frame was never written: a later update of the same key in the same
	// conflation bucket replaced it, or a snapshot written before the
	// bucket's end (a segment opened mid-way, a reload) holds it.
	Conflated uint64
	Feeds     int  // feeds known to the hub
	Loaded    bool // the stored state is loaded and segments open
	// StateBytes is the size of every feed's state together, in bytes (what
	// Config.MaxStateBytes caps; Feed.StateBytes has it per feed).
	StateBytes int64
	// FeedsEvicted counts feeds with keys removed because they were idle
	// when the caps were full (Config.FeedIdleEvict); FeedsExpired counts
	// feeds without keys removed: empty for the retention plus a segment,
	// or earlier to make room for a new feed.
	FeedsEvicted, FeedsExpired uint64
	// LogBytes is the distribution of segment-log sizes at close:
	// Buckets[i] counts logs of at most LogSizeBuckets[i] bytes
	// (cumulative, as Prometheus histograms are).
	LogBytes Histogram
}

// Histogram is a cumulative histogram over LogSizeBuckets.
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets []uint64
}

type stats struct {
	rotations, keepalives, updates, aborted, reloads atomic.Uint64
	conflated                                        atomic.Uint64
	evicted, expired                                 atomic.Uint64
	feeds                                            atomic.Int64
	logCount, logSum                                 atomic.Uint64
	logBuckets                                       [10]atomic.Uint64 // not cumulative
}

func (s *stats) rotated(size int) {
	s.rotations.Add(1)
	s.logCount.Add(1)
	s.logSum.Add(uint64(size))
	for i, ub := range LogSizeBuckets {
		if float64(size) <= ub {
			s.logBuckets[i].Add(1)
			return
		}
	}
}

func (s *stats) snapshot() Stats {
	st := Stats{
		Rotations:    s.rotations.Load(),
		Keepalives:   s.keepalives.Load(),
		Updates:      s.updates.Load(),
		Aborted:      s.aborted.Load(),
		Reloads:      s.reloads.Load(),
		Conflated:    s.conflated.Load(),
		Feeds:        int(s.feeds.Load()),
		FeedsEvicted: s.evicted.Load(),
		FeedsExpired: s.expired.Load(),
		LogBytes: Histogram{
			Count:   s.logCount.Load(),
			Sum:     float64(s.logSum.Load()),
			Buckets: make([]uint64, len(LogSizeBuckets)),
		},
	}
	var cum uint64
	for i := range s.logBuckets {
		cum += s.logBuckets[i].Load()
		st.LogBytes.Buckets[i] = cum
	}
	return st
}
