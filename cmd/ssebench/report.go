package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"marquee/wire"
)

// Report is what a run measured.
type Report struct {
	URL           string   `json:"url"`
	Feed          string   `json:"feed"`
	Mode          string   `json:"mode"`
	Viewers       int      `json:"viewers"`
	PeakConnected int64    `json:"peak_connected"`
	EndConnected  int64    `json:"end_connected"`
	Requests      int64    `json:"requests"`
	Segments      int64    `json:"segments_completed"`
	Parts         int64    `json:"parts_completed"`
	Events        int64    `json:"events"`
	Updates       int64    `json:"updates"`
	Keepalives    int64    `json:"keepalives"`
	Bytes         int64    `json:"bytes"`
	Errors        int64    `json:"errors"`
	ErrorKinds    []string `json:"error_kinds,omitempty"`
	TTFBP50       float64  `json:"ttfb_p50_ms"`
	TTFBP99       float64  `json:"ttfb_p99_ms"`
	HandoverP50   float64  `json:"handover_p50_ms"`
	HandoverP99   float64  `json:"handover_p99_ms"`
	LatencyP50    float64  `json:"latency_p50_ms"`
	LatencyP99    float64  `json:"latency_p99_ms"`
	LatencyMax    float64  `json:"latency_max_ms"`
	Seconds       float64  `json:"seconds"`
}

func (b *bench) report(elapsed time.Duration, endConnected int64) Report {
	r := Report{
		URL: b.cfg.base.String(), Feed: b.cfg.feed, Mode: b.cfg.mode, Viewers: b.cfg.viewers,
		PeakConnected: b.peak.Load(), EndConnected: endConnected,
		Requests: b.requests.Load(), Segments: b.segments.Load(), Parts: b.partsDone.Load(), Events: b.events.Load(),
		Updates: b.updates.Load(), Keepalives: b.keepalives.Load(), Bytes: b.bytes.Load(),
		TTFBP50: b.ttfb.quantileMs(0.5), TTFBP99: b.ttfb.quantileMs(0.99),
		HandoverP50: b.handover.quantileMs(0.5), HandoverP99: b.handover.quantileMs(0.99),
		LatencyP50: b.latency.quantileMs(0.5), LatencyP99: b.latency.quantileMs(0.99), LatencyMax: b.latency.maxMs(),
		Seconds: elapsed.Seconds(),
	}
	b.mu.Lock()
	for k, n := range b.errs {
		r.Errors += n
		r.ErrorKinds = append(r.ErrorKinds, fmt.Sprintf("%s ×%d", k, n))
	}
	b.mu.Unlock()
	return r
}

// writeText writes the report for a person.
func (r Report) writeText(w io.Writer) {
	fmt.Fprintf(w, "ssebench %s feed %s mode %s: %d viewers for %s\n", r.URL, r.Feed, r.Mode, r.Viewers, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(w, "  connected:   peak %d, at end %d\n", r.PeakConnected, r.EndConnected)
	switch r.Mode {
	case wire.ModeParts:
		fmt.Fprintf(w, "  requests:    %d (parts completed %d, segments completed %d)\n", r.Requests, r.Parts, r.Segments)
		fmt.Fprintf(w, "  ttfb:        p50 %.1fms, p99 %.1fms (join to the first byte of upto/{k}, held until the part ends)\n", r.TTFBP50, r.TTFBP99)
	default:
		fmt.Fprintf(w, "  requests:    %d (segments completed %d)\n", r.Requests, r.Segments)
		fmt.Fprintf(w, "  ttfb:        p50 %.1fms, p99 %.1fms (first request of each viewer)\n", r.TTFBP50, r.TTFBP99)
	}
	if r.Mode == wire.ModeStream {
		fmt.Fprintf(w, "  hand-over:   p50 %.1fms, p99 %.1fms (end of a segment to first byte of the next)\n", r.HandoverP50, r.HandoverP99)
	}
	fmt.Fprintf(w, "  latency:     p50 %.1fms, p99 %.1fms, max %.1fms (publish to receive, %d updates)\n", r.LatencyP50, r.LatencyP99, r.LatencyMax, r.Updates)
	fmt.Fprintf(w, "  received:    %d events, %d keepalives, %d bytes\n", r.Events, r.Keepalives, r.Bytes)
	fmt.Fprintf(w, "  errors:      %d %s\n", r.Errors, strings.Join(r.ErrorKinds, ", "))
}
