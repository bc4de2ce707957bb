package main

import (
	"math"
	"sync/atomic"
	"time"
)

// histogram is a lock-free log-bucketed histogram of durations from 10µs
// to about 17 minutes, with buckets 5% wide (quantiles within 5%).
type histogram struct {
	buckets [histBuckets]atomic.Int64
	max     atomic.Int64
}

const (
	histMin     = 10 * time.Microsecond
	histGrowth  = 1.05
	histBuckets = 380
)

func newHistogram() *histogram { return &histogram{} }

func (h *histogram) add(d time.Duration) {
	i := 0
	if d > histMin {
		i = min(int(math.Log(float64(d)/float64(histMin))/math.Log(histGrowth))+1, histBuckets-1)
	}
	h.buckets[i].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// quantileMs returns the upper bound of the bucket holding the q-quantile,
// in milliseconds (0 when empty).
func (h *histogram) quantileMs(q float64) float64 {
	var total int64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= max(rank, 1) {
			upper := float64(histMin) * math.Pow(histGrowth, float64(i))
			return math.Min(upper, float64(h.max.Load())) / float64(time.Millisecond)
		}
	}
	return h.maxMs()
}

func (h *histogram) maxMs() float64 { return float64(h.max.Load()) / float64(time.Millisecond) }
