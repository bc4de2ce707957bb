package probe

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRecommend(t *testing.T) {
	streamOK := &StreamResult{Pass: true, Verdict: "VERDICT: PASS stream mode collapses and streams (50 viewers, 1 origin response per segment)",
		Segments: []SegmentStats{{Collapse: Collapse{Viewers: 50, Responses: 1}}}}
	streamBuffers := &StreamResult{Verdict: "VERDICT: FAIL buffers: 9 of 9 live responses arrived only near their end", Buffering: BufferingReport{Buffers: true},
		Segments: []SegmentStats{{Collapse: Collapse{Viewers: 50, Responses: 1}}}}
	streamNoCollapse := &StreamResult{Verdict: "VERDICT: FAIL no collapse: 50 viewers saw 50 distinct origin responses"}
	partsOK := &PartsResult{Pass: true, Verdict: "VERDICT: PASS parts mode collapses and is live",
		Parts: []PartStats{{Collapse: Collapse{Viewers: 50, Responses: 1}}, {Upto: true, Collapse: Collapse{Viewers: 7, Responses: 1}}}, Latency: Durations{1120 * time.Millisecond}}
	partsNoCollapse := &PartsResult{Verdict: "VERDICT: FAIL no collapse: 50 viewers saw 50 distinct origin responses for parts/1 of segment 7"}
	for _, tc := range []struct {
		name         string
		stream       *StreamResult
		streamErr    error
		parts        *PartsResult
		partsErr     error
		mode, line   string
		env, verdict string
		pass         bool
	}{
		{"both", streamOK, nil, partsOK, nil, "stream",
			"RECOMMEND: stream (edge streams cacheable responses to late joiners; segments collapse 50→1, median event delay 0 ms; parts mode works too, with median latency 1.12 s)",
			"MARQUEE_CLIENT_MODE=stream", "VERDICT: PASS stream mode works through this edge (parts mode too)", true},
		{"buffering", streamBuffers, nil, partsOK, nil, "parts",
			"RECOMMEND: parts (edge buffers cacheable responses; parts collapse 50→1 per part, median part latency 1.12 s)",
			"MARQUEE_CLIENT_MODE=parts", "VERDICT: PASS parts mode works through this edge; stream mode does not", true},
		{"stream only", streamOK, nil, nil, errors.New("no parts mode"), "stream",
			"RECOMMEND: stream (edge streams cacheable responses to late joiners; segments collapse 50→1, median event delay 0 ms; parts mode does not: could not probe: no parts mode)",
			"MARQUEE_CLIENT_MODE=stream", "VERDICT: PASS stream mode works through this edge", true},
		{"parts, stream not collapsing", streamNoCollapse, nil, partsOK, nil, "parts",
			"RECOMMEND: parts (stream mode fails here: no collapse: 50 viewers saw 50 distinct origin responses; parts collapse 50→1 per part, median part latency 1.12 s)",
			"MARQUEE_CLIENT_MODE=parts", "VERDICT: PASS parts mode works through this edge; stream mode does not", true},
		{"neither", streamNoCollapse, nil, partsNoCollapse, nil, "",
			"RECOMMEND: none (stream mode: no collapse: 50 viewers saw 50 distinct origin responses; parts mode: no collapse: 50 viewers saw 50 distinct origin responses for parts/1 of segment 7)",
			"MARQUEE_CLIENT_MODE: no setting helps until the edge collapses viewers (see docs/cdn.md)", "VERDICT: FAIL neither stream nor parts mode works through this edge", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Recommend(tc.stream, tc.streamErr, tc.parts, tc.partsErr)
			if r.Mode != tc.mode || r.Line != tc.line || r.Env != tc.env || r.Verdict != tc.verdict || r.Pass != tc.pass {
				t.Errorf("got\n%+v\nwant mode %q\n%s\n%s\n%s\npass %v", r, tc.mode, tc.line, tc.env, tc.verdict, tc.pass)
			}
			var b strings.Builder
			r.WriteReport(&b)
			if got, want := b.String(), tc.line+"\n"+tc.env+"\n"+tc.verdict+"\n"; got != want {
				t.Errorf("report %q, want %q", got, want)
			}
		})
	}
}
