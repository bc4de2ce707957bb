package probe

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// headersReported are the response headers a probe reports.
var headersReported = []string{
	"Cache-Control", "CDN-Cache-Control", "Surrogate-Control", "Age", "X-Cache", "X-Cache-Hits",
	"CF-Cache-Status", "X-Served-By", "Via", "Content-Type", "Content-Encoding", "Content-Length",
	"Vary", "Set-Cookie", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "X-Accel-Buffering",
}

// countHeaders counts, per reported header, the responses that carried each
// value ("(absent)" when none, "present" for any Age).
func countHeaders(into map[string]map[string]int, h http.Header) {
	for _, name := range headersReported {
		v := strings.Join(h.Values(name), ", ")
		if name == "Age" && v != "" {
			v = "present"
		}
		if v == "" {
			v = "(absent)"
		}
		if into[name] == nil {
			into[name] = map[string]int{}
		}
		into[name][v]++
	}
}

// writeHeaders writes the counted header values, in the order of
// headersReported, at most four values per header.
func writeHeaders(w io.Writer, headers map[string]map[string]int) {
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Compare(slices.Index(headersReported, a), slices.Index(headersReported, b))
	})
	for _, n := range names {
		vals := make([]string, 0, len(headers[n]))
		for v, c := range headers[n] {
			vals = append(vals, fmt.Sprintf("%q ×%d", v, c))
		}
		slices.Sort(vals)
		if len(vals) > 4 {
			vals = append(vals[:4], fmt.Sprintf("… %d more", len(vals)-4))
		}
		fmt.Fprintf(w, "  %-30s %s\n", n+":", strings.Join(vals, ", "))
	}
}

// WriteReport writes a human-readable report ending with the verdict line.
func (r *StreamResult) WriteReport(w io.Writer) {
	d := r.Feed
	fmt.Fprintf(w, "edge:       %s\n", r.Config.Base)
	fmt.Fprintf(w, "feed:       %s (segments of %gs, keepalive %gs)\n", d.Feed, d.SegmentLength, d.Keepalive)
	fmt.Fprintf(w, "viewers:    %d joining over %s, watching segments %d..%d (clock offset to origin %s)\n",
		r.Config.Viewers, r.Config.Stagger, r.First, r.Last, round(r.Offset))
	fmt.Fprintf(w, "\nper segment:\n")
	fmt.Fprintf(w, "  %-12s %8s %10s %10s %10s %10s %8s\n", "segment", "viewers", "origin", "collapse", "complete", "identical", "bytes")
	for _, s := range r.Segments {
		fmt.Fprintf(w, "  %-12d %8d %10d %9.1fx %10d %10v %8d\n", s.Segment, s.Viewers, s.Responses, s.Ratio, s.Complete, s.Identical, s.Bytes)
	}
	fmt.Fprintf(w, "\nrequest variants sharing their segment's main origin response:\n")
	for _, v := range allVariants {
		if c, ok := r.Variants[v]; ok {
			fmt.Fprintf(w, "  %-14s %d/%d\n", v, c[0], c[1])
		}
	}
	fmt.Fprintf(w, "\ndelivery:   %s\n", r.Buffering.Explanation)
	fmt.Fprintf(w, "late joiner time to snapshot: %s\n", r.LateTTFB)
	fmt.Fprintf(w, "heartbeat gaps (longest silence per live response; keepalive %gs): %s\n", d.Keepalive, r.HeartbeatGap)
	fmt.Fprintf(w, "segment hand-over gaps (end of one body to first byte of the next): %s\n", r.Handover)
	fmt.Fprintf(w, "\ncache headers on segment responses:\n")
	writeHeaders(w, r.Headers)
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, "\nviewers that failed to start: %d (first: %s)\n", len(r.Failed), r.Failed[0])
	}
	var errs []string
	for _, o := range r.Observations {
		if o.Err != "" {
			errs = append(errs, fmt.Sprintf("viewer %d segment %d: %s", o.Viewer, o.Segment, o.Err))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nresponses that did not end cleanly: %d (first: %s)\n", len(errs), errs[0])
	}
	fmt.Fprintf(w, "\n%s\n", r.Verdict)
}

// WriteReport writes a human-readable report ending with the verdict line.
func (r *PartsResult) WriteReport(w io.Writer) {
	d := r.Feed
	fmt.Fprintf(w, "edge:       %s\n", r.Config.Base)
	fmt.Fprintf(w, "feed:       %s (segments of %gs in %d parts of %gs, keepalive %gs)\n", d.Feed, d.SegmentLength, d.Parts, d.PartLength, d.Keepalive)
	fmt.Fprintf(w, "viewers:    %d in parts mode joining over %s, following parts through segment %d (clock offset to origin %s)\n",
		len(r.Viewers), r.Config.Stagger, r.Last, round(r.Offset))
	fmt.Fprintf(w, "\nper segment (parts/{k}: viewers following; upto/{k}: viewers joining):\n")
	fmt.Fprintf(w, "  %-12s %6s %8s %12s %9s %6s %12s %10s\n", "segment", "parts", "fetches", "origin/part", "collapse", "upto", "upto origin", "identical")
	type row struct {
		parts, fetches, maxResp, respSum, upto, uptoResp int
		identical                                        bool
	}
	rows := map[int64]*row{}
	var segs []int64
	for _, s := range r.Parts {
		x := rows[s.Segment]
		if x == nil {
			x = &row{identical: true}
			rows[s.Segment] = x
			segs = append(segs, s.Segment)
		}
		x.identical = x.identical && s.Identical
		if s.Upto {
			x.upto += s.Viewers
			x.uptoResp += s.Responses
			continue
		}
		x.parts++
		x.fetches += s.Viewers
		x.maxResp = max(x.maxResp, s.Responses)
		x.respSum += s.Responses
	}
	for _, n := range segs {
		x := rows[n]
		ratio := 0.0
		if x.respSum > 0 {
			ratio = float64(x.fetches) / float64(x.respSum)
		}
		fmt.Fprintf(w, "  %-12d %6d %8d %12d %8.1fx %6d %12d %10v\n", n, x.parts, x.fetches, x.maxResp, ratio, x.upto, x.uptoResp, x.identical)
	}
	fmt.Fprintf(w, "\nrequest variants sharing their part's main origin response:\n")
	for _, v := range allVariants {
		if c, ok := r.Variants[v]; ok {
			fmt.Fprintf(w, "  %-14s %d/%d\n", v, c[0], c[1])
		}
	}
	applied, dropped := 0, 0
	for _, v := range r.Viewers {
		applied += len(v.Applied)
		dropped += v.Dropped
	}
	fmt.Fprintf(w, "\nexactly once: %d of %d viewers (%d updates applied, %d duplicates dropped)\n", r.ExactlyOnce, len(r.Viewers), applied, dropped)
	fmt.Fprintf(w, "parts: %d requests held until their part ended; first byte after the part's end (or the request, if later): %s; %d later than %s\n",
		r.Held, r.Wait, r.Late, r.Config.PartSlack)
	fmt.Fprintf(w, "join to state (descriptor request to the end of upto/{k}): %s\n", r.JoinTime)
	fmt.Fprintf(w, "publish-to-viewer latency (updates published after the viewer joined): %s\n", r.Latency)
	fmt.Fprintf(w, "\ncache headers on part responses:\n")
	writeHeaders(w, r.Headers)
	var stopped []string
	for _, v := range r.Viewers {
		if v.Err != "" {
			stopped = append(stopped, fmt.Sprintf("viewer %d: %s", v.Viewer, v.Err))
		}
	}
	if len(stopped) > 0 {
		fmt.Fprintf(w, "\nviewers that stopped early: %d (first: %s)\n", len(stopped), stopped[0])
	}
	fmt.Fprintf(w, "\n%s\n", r.Verdict)
}

// WriteReport writes the recommendation, the setting and the verdict line,
// one per line.
func (r Recommendation) WriteReport(w io.Writer) {
	fmt.Fprintf(w, "%s\n%s\n%s\n", r.Line, r.Env, r.Verdict)
}
