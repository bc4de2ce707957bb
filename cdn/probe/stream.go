package probe

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"marquee/sse"
	"marquee/wire"
)

// This file is stream mode: viewers open the segment in progress, then each
// next one named by the "next" event, and the verdict tells whether the edge
// collapses them into one origin response per segment and streams it.

// Observation is what one viewer received for one segment. Times are on the
// local clock; StreamResult.Offset converts them to the origin's.
type Observation struct {
	Viewer    int
	Variant   string
	Segment   int64
	Requested time.Time
	Headers   time.Time // response headers received (zero if none)
	FirstByte time.Time // first body byte (zero if none)
	Snapshot  time.Time // snapshot event decoded (zero if none)
	Done      time.Time // body ended (EOF or error)

	Status     int
	ResponseID string      // Marquee-Response-Id
	Header     http.Header // the response headers
	Bytes      int
	Sum        [sha256.Size]byte
	Clean      bool   // ended with a next event and a clean EOF
	Err        string // why it did not end cleanly

	// Reads are the arrival times of body reads relative to Requested.
	Reads []time.Duration
	// SnapshotSeq and SnapshotTime are the snapshot's seq and time (unix ms).
	SnapshotSeq  uint64
	SnapshotTime int64
	// Updates are the update events in stream order.
	Updates []TimedEvent
	// Keepalives counts keepalive comments.
	Keepalives int
	// NextURL is the URL the next event named.
	NextURL string
}

// StreamResult is everything a stream-mode probe observed and what it
// concludes.
type StreamResult struct {
	Config       Config
	Feed         wire.Descriptor
	Start        time.Time
	Offset       time.Duration // origin clock minus local clock (estimate)
	First, Last  int64         // the segments watched
	Observations []Observation
	Failed       []string // viewers that could not start, with why

	Segments  []SegmentStats
	Buffering BufferingReport
	// LateTTFB is request → snapshot for viewers that joined a segment
	// already in progress; Handover is the end of one segment's body → the
	// first byte of the next one's at the same viewer; HeartbeatGap is the
	// longest silence within each live response.
	LateTTFB, Handover, HeartbeatGap Durations
	// Headers are the values the edge returned on segment responses, by
	// header name, with how many responses carried each value.
	Headers map[string]map[string]int
	// Variants counts, per request variant, the responses that shared the
	// origin response most viewers of their segment got.
	Variants map[string][2]int // [shared, total]

	Pass    bool
	Verdict string
}

// SegmentStats summarises one segment across viewers.
type SegmentStats struct {
	Segment int64
	Collapse
}

// Stream runs stream-mode viewers through the edge at cfg.Base and returns
// what they saw and the verdict. It returns an error only when it cannot
// start (no descriptor); a failing edge is a result with Pass false. It ends
// when every viewer has watched its last segment or ctx is done.
func Stream(ctx context.Context, cfg Config) (*StreamResult, error) {
	p, bound, err := newProber(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	d := p.desc
	offset := p.offset
	D := d.SegmentDuration()
	start := p.begin()
	cfg = p.cfg
	lastEnd := time.UnixMilli(int64(p.last+1) * D.Milliseconds()).Add(-offset)
	cfg.Logf("probe: %d viewers on feed %q join over %s and watch through segment %d (about %s)",
		p.cfg.Viewers, p.cfg.Feed, p.cfg.Stagger, p.last, time.Until(lastEnd).Round(time.Second))

	// Bound the whole run: the last segment's end plus room for a slow edge.
	ctx, cancel := context.WithDeadline(ctx, lastEnd.Add(D+15*time.Second))
	defer cancel()

	joins := p.joins()
	var wg sync.WaitGroup
	results := make([][]Observation, p.cfg.Viewers)
	fails := make([]string, p.cfg.Viewers)
	for i := range p.cfg.Viewers {
		wg.Go(func() {
			t := time.NewTimer(time.Until(start.Add(joins[i])))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				fails[i] = "never joined: " + ctx.Err().Error()
				return
			}
			results[i], fails[i] = p.viewer(ctx, i)
		})
	}
	wg.Wait()

	res := &StreamResult{Config: p.cfg, Feed: d, Start: start, First: p.first, Last: p.last}
	for i := range results {
		res.Observations = append(res.Observations, results[i]...)
		if fails[i] != "" {
			res.Failed = append(res.Failed, fmt.Sprintf("viewer %d: %s", i, fails[i]))
		}
	}
	res.Offset = calibrateOffset(bound, res.Observations)
	res.analyse()
	return res, nil
}

// viewer watches segments from the one in progress now through p.last.
func (p *prober) viewer(ctx context.Context, i int) ([]Observation, string) {
	var obs []Observation
	n := p.index(time.Now())
	path := p.desc.SegmentPath(n)
	for n <= p.last {
		o := p.watch(ctx, i, n, path)
		obs = append(obs, o)
		if !o.Clean || o.NextURL == "" {
			return obs, ""
		}
		path = o.NextURL
		n++
		if m, ok := segmentOf(path); ok {
			n = m
		}
	}
	return obs, ""
}

// watch reads one segment response.
func (p *prober) watch(ctx context.Context, i int, n int64, path string) Observation {
	o := Observation{Viewer: i, Variant: p.variant(i), Segment: n}
	h, u := p.request(i, o.Variant, path)
	var st started
	resp, msg := p.open(ctx, u, h, &st)
	o.Requested, o.Headers, o.Status, o.Header, o.ResponseID = st.Requested, st.Headers, st.Status, st.Header, st.ResponseID
	if resp == nil {
		o.Done, o.Err = time.Now(), msg
		return o
	}
	defer resp.Body.Close()
	tr := &timedReader{r: resp.Body, start: o.Requested, h: sha256.New()}
	var body io.Reader = tr
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		// An edge that compresses a stream: decode it, and report the
		// header (compression makes edges buffer).
		zr, err := gzip.NewReader(tr)
		if err != nil {
			o.Done, o.Err = time.Now(), "gzip: "+err.Error()
			return o
		}
		body = zr
	}
	dec := sse.NewDecoder(body)
	dec.OnComment = func(text string) {
		if text == "keepalive" {
			o.Keepalives++
		}
	}
	sawNext := false
	for {
		ev, err := dec.Next()
		if err != nil {
			o.Done = time.Now()
			switch {
			case err == io.EOF && sawNext:
				o.Clean = true
			case err == io.EOF:
				o.Err = "ended without a next event"
			default:
				o.Err = err.Error()
			}
			break
		}
		switch ev.Type {
		case wire.EventSnapshot:
			o.Snapshot = tr.last
			var s wire.Snapshot
			if json.Unmarshal(ev.Data, &s) == nil {
				o.SnapshotSeq, o.SnapshotTime = s.Seq, s.Time
			}
		case wire.EventUpdate:
			var u wire.Update
			if json.Unmarshal(ev.Data, &u) == nil {
				o.Updates = append(o.Updates, TimedEvent{Seq: u.Seq, Time: u.Time, Arrived: tr.last})
			}
		case wire.EventNext:
			var nx wire.Next
			if json.Unmarshal(ev.Data, &nx) == nil {
				o.NextURL = nx.URL
			}
			sawNext = true
		}
	}
	o.Bytes = tr.n
	copy(o.Sum[:], tr.h.Sum(nil))
	o.Reads = tr.reads
	if len(tr.reads) > 0 {
		o.FirstByte = o.Requested.Add(tr.reads[0])
	}
	return o
}

func (r *StreamResult) analyse() {
	d := r.Feed
	D := d.SegmentDuration()
	thr := r.Config.BufferThreshold
	ka := d.KeepaliveDuration()
	local := func(ms int64) time.Time { return time.UnixMilli(ms).Add(-r.Offset) }
	segStart := func(n int64) time.Time { return local(n * D.Milliseconds()) }

	bySeg := map[int64][]*Observation{}
	joinedSeen := map[int]bool{}
	var deliveries []Delivery
	r.Headers = map[string]map[string]int{}
	r.Variants = map[string][2]int{}
	for i := range r.Observations {
		o := &r.Observations[i]
		bySeg[o.Segment] = append(bySeg[o.Segment], o)
		joined := !joinedSeen[o.Viewer] // the viewer's first request
		joinedSeen[o.Viewer] = true
		if o.Status == 0 {
			continue
		}
		countHeaders(r.Headers, o.Header)
		if o.Status != http.StatusOK || o.FirstByte.IsZero() {
			continue
		}
		start, end := segStart(o.Segment), segStart(o.Segment+1)
		dl := Delivery{Requested: o.Requested, Start: start, End: end, FirstByte: o.FirstByte}
		for _, u := range o.Updates {
			from := local(u.Time)
			if o.Requested.After(from) {
				from = o.Requested
			}
			dl.Delays = append(dl.Delays, u.Arrived.Sub(from))
		}
		deliveries = append(deliveries, dl)
		// Late joiners: viewers whose first request came after the segment
		// had been running for a tenth of its length (the first viewers make
		// the edge fetch; later segments are hand-overs, measured below).
		if joined && o.Requested.After(start.Add(D/10)) && o.Requested.Before(end) && !o.Snapshot.IsZero() {
			r.LateTTFB = append(r.LateTTFB, o.Snapshot.Sub(o.Requested))
		}
		// The longest silence while the segment was live, from when the
		// viewer could first have received something to the segment end.
		var gap time.Duration
		prev := o.Requested
		if start.After(prev) {
			prev = start
		}
		for _, rd := range o.Reads {
			at := o.Requested.Add(rd)
			if at.After(end) {
				break
			}
			gap = max(gap, at.Sub(prev))
			prev = at
		}
		if !o.Done.Before(end) {
			gap = max(gap, end.Sub(prev))
		}
		if !o.Requested.After(end.Add(-ka)) {
			r.HeartbeatGap = append(r.HeartbeatGap, gap)
		}
	}
	// Hand-overs: consecutive segments of one viewer.
	byViewer := map[int][]*Observation{}
	for i := range r.Observations {
		o := &r.Observations[i]
		byViewer[o.Viewer] = append(byViewer[o.Viewer], o)
	}
	for _, os := range byViewer {
		for j := 1; j < len(os); j++ {
			if os[j-1].Clean && !os[j].FirstByte.IsZero() {
				r.Handover = append(r.Handover, os[j].FirstByte.Sub(os[j-1].Done))
			}
		}
	}

	segs := make([]int64, 0, len(bySeg))
	for n := range bySeg {
		segs = append(segs, n)
	}
	slices.Sort(segs)
	judge := collapseJudge{minRatio: r.Config.MinCollapseRatio, unit: "segment", variants: r.Variants}
	errs := 0
	for _, n := range segs {
		rs := segmentResponses(bySeg[n])
		st := SegmentStats{Segment: n, Collapse: collapseOf(rs)}
		r.Segments = append(r.Segments, st)
		errs += st.Errors
		judge.add(st.Collapse, rs, "on", fmt.Sprintf("segment %d", n))
	}
	r.Buffering = ClassifyBuffering(deliveries, thr)

	nv := r.Config.Viewers
	problems := judge.verdict()
	if r.Buffering.Buffers {
		problems = append(problems, "buffers: "+r.Buffering.Explanation)
	}
	if c := r.Headers["Content-Encoding"]; len(c) > 1 || (len(c) == 1 && c["(absent)"] == 0) {
		problems = append(problems, "the edge compresses segments (Content-Encoding), which makes edges buffer")
	}
	if len(r.Failed) > 0 || errs > 0 {
		if fails := len(r.Failed) + errs; fails*10 > len(r.Observations)+len(r.Failed) {
			problems = append(problems, fmt.Sprintf("errors: %d of %d responses failed", fails, len(r.Observations)+len(r.Failed)))
		}
	}
	if len(problems) == 0 {
		per := "1 origin response per segment"
		if m := maxResponses(r.Segments); m > 1 {
			per = fmt.Sprintf("at most %d origin responses per segment", m)
		}
		r.Pass = true
		r.Verdict = fmt.Sprintf("VERDICT: PASS stream mode collapses and streams (%d viewers, %s)", nv, per)
		return
	}
	r.Verdict = "VERDICT: FAIL " + strings.Join(problems, "; ")
}

// segmentResponses is what collapse judging needs of a segment's observations.
func segmentResponses(os []*Observation) []response {
	rs := make([]response, len(os))
	for i, o := range os {
		rs[i] = response{status: o.Status, id: o.ResponseID, variant: o.Variant, complete: o.Clean, sum: o.Sum, bytes: o.Bytes}
	}
	return rs
}
