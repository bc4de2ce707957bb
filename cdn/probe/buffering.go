package probe

import (
	"fmt"
	"time"
)

// Delivery is one response as the buffering classification sees it, with
// every time on the origin's clock.
type Delivery struct {
	// Requested is when the request was sent; Start and End are when the
	// origin began and finished writing the response (a segment's start and
	// end); FirstByte is when the first body byte arrived.
	Requested, Start, End, FirstByte time.Time
	// Delays are how long after the origin wrote them (or after the request,
	// if later) stamped events arrived.
	Delays []time.Duration
}

// BufferingReport classifies deliveries of responses that were requested
// while the origin was still writing them.
type BufferingReport struct {
	Live        int // deliveries requested at least 2×threshold before their end
	Buffered    int // live deliveries whose first byte came only near the end, or whose events came late
	Threshold   time.Duration
	FirstByte   Durations // live deliveries: first byte after max(request, start)
	Delays      Durations // all stamped events of live deliveries
	Buffers     bool      // most live deliveries were buffered
	Explanation string
}

// ClassifyBuffering tells whether an edge buffered responses instead of
// streaming them: a live delivery is buffered when its first byte came more
// than threshold after it could have, and not before threshold before the
// end, or when its median event delay exceeds threshold. The edge buffers
// when more than half of the live deliveries were buffered. It is independent
// of the delivery mode: a held part request is a delivery whose Start and
// End are the part's end.
func ClassifyBuffering(ds []Delivery, threshold time.Duration) BufferingReport {
	r := BufferingReport{Threshold: threshold}
	for _, d := range ds {
		if d.FirstByte.IsZero() || !d.Requested.Before(d.End.Add(-2*threshold)) {
			continue
		}
		r.Live++
		from := d.Requested
		if d.Start.After(from) {
			from = d.Start
		}
		ttfb := d.FirstByte.Sub(from)
		r.FirstByte = append(r.FirstByte, ttfb)
		r.Delays = append(r.Delays, d.Delays...)
		late := ttfb > threshold && !d.FirstByte.Before(d.End.Add(-threshold))
		if Durations(d.Delays).Quantile(0.5) > threshold {
			late = true
		}
		if late {
			r.Buffered++
		}
	}
	switch {
	case r.Live == 0:
		r.Explanation = "no response was watched live: cannot tell"
	case 2*r.Buffered > r.Live:
		r.Buffers = true
		r.Explanation = fmt.Sprintf("%d of %d live responses arrived only near their end or late (first byte %s; event delay %s)",
			r.Buffered, r.Live, r.FirstByte, r.Delays)
	default:
		r.Explanation = fmt.Sprintf("%d of %d live responses arrived progressively (first byte %s; event delay %s)",
			r.Live-r.Buffered, r.Live, r.FirstByte, r.Delays)
	}
	return r
}
