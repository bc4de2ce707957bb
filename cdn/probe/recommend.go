package probe

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"marquee/wire"
)

// Recommendation is the delivery mode that suits an edge, from a stream-mode
// probe and a parts-mode probe of it: stream mode where the edge streams one
// origin response per segment to every viewer, parts mode where it
// collapses but buffers cacheable responses (Cloudflare), neither where it
// does not collapse.
type Recommendation struct {
	// Mode is wire.ModeStream, wire.ModeParts, or "" when neither works.
	Mode string
	// Line is "RECOMMEND: <mode> (<why>)".
	Line string
	// Env is the MARQUEE_CLIENT_MODE setting for the origin behind this
	// edge, or advice when there is none.
	Env string
	// Pass is whether at least one mode works; Verdict says which.
	Pass    bool
	Verdict string
}

// Recommend chooses the mode. Either result may be nil (that probe could
// not run); why then says what stopped it. Stream mode wins when both work:
// its updates arrive as they are written, not at the end of a part, and a
// viewer makes one request per segment instead of one per part.
func Recommend(stream *StreamResult, streamErr error, parts *PartsResult, partsErr error) Recommendation {
	streamOK := stream != nil && stream.Pass
	partsOK := parts != nil && parts.Pass
	var rec Recommendation
	switch {
	case streamOK:
		rec.Mode = wire.ModeStream
		why := fmt.Sprintf("edge streams cacheable responses to late joiners; segments collapse %d→%d, median event delay %s",
			maxSegmentViewers(stream.Segments), maxResponses(stream.Segments), seconds(stream.Buffering.Delays.Quantile(0.5)))
		if partsOK {
			why += fmt.Sprintf("; parts mode works too, with median latency %s", seconds(parts.Latency.Quantile(0.5)))
		} else {
			why += "; parts mode does not: " + failure(partsVerdict(parts), partsErr)
		}
		rec.Line = "RECOMMEND: stream (" + why + ")"
		rec.Verdict = "VERDICT: PASS stream mode works through this edge"
		if partsOK {
			rec.Verdict += " (parts mode too)"
		}
	case partsOK:
		rec.Mode = wire.ModeParts
		why := "stream mode fails here: " + failure(streamVerdict(stream), streamErr)
		if stream != nil && stream.Buffering.Buffers {
			why = "edge buffers cacheable responses"
		}
		rec.Line = fmt.Sprintf("RECOMMEND: parts (%s; parts collapse %d→%d per part, median part latency %s)",
			why, parts.maxPartViewers(), maxResponses(parts.Parts), seconds(parts.Latency.Quantile(0.5)))
		rec.Verdict = "VERDICT: PASS parts mode works through this edge; stream mode does not"
	default:
		rec.Line = fmt.Sprintf("RECOMMEND: none (stream mode: %s; parts mode: %s)",
			failure(streamVerdict(stream), streamErr), failure(partsVerdict(parts), partsErr))
		rec.Env = "MARQUEE_CLIENT_MODE: no setting helps until the edge collapses viewers (see docs/cdn.md)"
		rec.Verdict = "VERDICT: FAIL neither stream nor parts mode works through this edge"
		return rec
	}
	rec.Pass = true
	rec.Env = "MARQUEE_CLIENT_MODE=" + rec.Mode
	return rec
}

func streamVerdict(r *StreamResult) string {
	if r == nil {
		return ""
	}
	return r.Verdict
}

func partsVerdict(r *PartsResult) string {
	if r == nil {
		return ""
	}
	return r.Verdict
}

// failure is a failed verdict without its prefix, or the error that kept
// the probe from running.
func failure(verdict string, err error) string {
	if verdict == "" {
		if err != nil {
			return "could not probe: " + err.Error()
		}
		return "not probed"
	}
	return strings.TrimPrefix(strings.TrimPrefix(verdict, "VERDICT: "), "FAIL ")
}

func maxSegmentViewers(ss []SegmentStats) int {
	m := 0
	for _, s := range ss {
		m = max(m, s.Viewers)
	}
	return m
}

// Both runs the stream-mode and the parts-mode probe at the same time
// against one edge, for Recommend.
func Both(ctx context.Context, cfg Config) (stream *StreamResult, streamErr error, parts *PartsResult, partsErr error) {
	var wg sync.WaitGroup
	wg.Go(func() { stream, streamErr = Stream(ctx, cfg) })
	wg.Go(func() { parts, partsErr = Parts(ctx, cfg) })
	wg.Wait()
	return stream, streamErr, parts, partsErr
}
