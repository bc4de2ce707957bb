package cdn

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"marquee/sse"
)

// This file is the parts-mode half of the probe. Parts mode is for edges
// that buffer cacheable responses (Cloudflare): each segment is also
// addressed in parts of P seconds, complete responses that the origin holds
// until the part is finished, so that the edge's ordinary collapsing of
// concurrent misses does the fan-out (LL-HLS's blocking reload). A viewer
// reads the feed descriptor, asks for upto/{k} of the part in progress (the
// segment's log from byte 0 to the end of part k: the snapshot and every
// update so far), then parts/{k+1}, {k+2}, … and after the last part of a
// segment part 0 of the segment its "next" event names, always exactly one
// request outstanding. It keeps "the snapshot, then every update with a
// higher seq" as its state.
//
// The probe tells from what its viewers received whether the edge collapses
// them into one origin response per part (Marquee-Response-Id), whether held
// parts arrive promptly once finished, the publish-to-viewer latency, and
// whether every viewer applied every update exactly once.

// maxPartBytes bounds one part response the probe reads.
const maxPartBytes = 64 << 20

// PartObservation is what one viewer received for one parts-mode request.
// Times are on the local clock; PartsResult.Offset converts them.
type PartObservation struct {
	Viewer    int
	Variant   string
	Segment   int64
	Part      int
	Upto      bool // upto/{k} (a joiner's first request), else parts/{k}
	Requested time.Time
	Headers   time.Time // response headers received (zero if none)
	FirstByte time.Time // first body byte; the headers for an empty body
	Done      time.Time // body read to its end (or failed)

	Status     int
	ResponseID string      // Marquee-Response-Id
	Header     http.Header // the response headers
	Bytes      int         // body length (decoded)
	Sum        [sha256.Size]byte
	Complete   bool   // the whole body, ending at an event boundary
	Err        string // why not

	Snapshot     bool // the body held a snapshot event
	SnapshotSeq  uint64
	SnapshotTime int64        // unix ms, origin clock
	Updates      []TimedEvent // every update event in the body, applied or not
	Keepalives   int
	NextURL      string // the URL of the body's next event (a segment's last part)
}

// PartsViewer is one parts-mode viewer's session: its requests and the state
// it built from them.
type PartsViewer struct {
	Viewer  int
	Variant string
	Joined  time.Time // when it asked for the descriptor (local clock)
	Fetches []PartObservation

	// FirstSeq is the seq of the first snapshot it applied; Seq the
	// highest seq it holds at the end, Entries its entries.
	FirstSeq uint64
	Seq      uint64
	Entries  map[string]json.RawMessage
	// Applied are the updates it applied, in order. Dropped counts updates
	// whose seq was not above the one held (duplicates); parts never
	// overlap, so a correct edge and origin give none.
	Applied []TimedEvent
	Dropped int
	// Problems are breaks of exactly-once delivery: a snapshot above the
	// seq held (updates were missed), or one that disagrees with the state
	// built from updates.
	Problems []string
	// Err is why the viewer stopped before its last part.
	Err string

	have bool // a snapshot has been applied
}

// PartStats summarises one part URL (parts/{k} or upto/{k} of segment n)
// across the viewers that requested it.
type PartStats struct {
	Segment int64
	Part    int
	Upto    bool
	Collapse
}

// PartsResult is everything a parts-mode probe observed and what it
// concludes.
type PartsResult struct {
	Config      ProbeConfig
	Feed        FeedInfo
	Start       time.Time
	Offset      time.Duration // origin clock minus local clock (estimate)
	First, Last int64         // the segments followed
	Viewers     []PartsViewer

	Parts []PartStats // by segment, part, parts before upto
	// Held counts requests sent before their part had ended (the origin or
	// the edge held them until it had). Wait is, for every answered
	// request, its first byte minus the later of its sending and its part's
	// end: what the edge added to the wait parts mode implies. Late counts
	// those that waited more than Config.PartSlack.
	Held, Late int
	Wait       Durations
	// Latency is publish to viewer (the update's "time" to the end of the
	// body that carried it) for every update published after the viewer
	// joined. JoinTime is a joiner's descriptor request to the end of its
	// upto response (when it has the state).
	Latency, JoinTime Durations
	// ExactlyOnce counts viewers that applied every update they received
	// once, with no gap and no duplicate.
	ExactlyOnce int
	Headers     map[string]map[string]int
	Variants    map[string][2]int // [shared, total], as ProbeResult.Variants

	Pass    bool
	Verdict string
}

// partLen returns the part length.
func (d FeedInfo) partLen() time.Duration {
	return time.Duration(d.PartLength * float64(time.Second))
}

// partPath expands a part_url or upto_url template.
func partPath(tmpl string, n int64, k int) string {
	return strings.NewReplacer("{n}", strconv.FormatInt(n, 10), "{k}", strconv.Itoa(k)).Replace(tmpl)
}

// ProbeParts runs parts-mode viewers through the edge at cfg.Base and
// returns what they saw and the verdict. Viewers join over cfg.Stagger and
// follow parts through the last part of the segment cfg.Follow segments
// after the one in progress at the last join. It returns an error only when
// it cannot start (no descriptor, or an origin without parts mode).
func ProbeParts(ctx context.Context, cfg ProbeConfig) (*PartsResult, error) {
	p, bound, err := newProber(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	d := p.desc
	P := d.partLen()
	if P <= 0 || d.Parts < 1 || !strings.Contains(d.PartURL, "{k}") || !strings.Contains(d.UptoURL, "{k}") {
		return nil, fmt.Errorf("probe: feed %q: the descriptor offers no parts mode (part_length, parts, part_url, upto_url)", p.cfg.Feed)
	}
	if p.cfg.PartSlack <= 0 {
		p.cfg.PartSlack = min(max(P/2, 250*time.Millisecond), 2*time.Second)
	}
	D := d.segLen()
	start := time.Now()
	p.start = start
	p.first = p.index(start)
	p.last = p.index(start.Add(p.cfg.Stagger-time.Millisecond)) + int64(p.cfg.Follow)
	lastEnd := time.UnixMilli(int64(p.last+1) * D.Milliseconds()).Add(-p.offset)
	p.cfg.Logf("probe: %d parts-mode viewers on feed %q join over %s and follow %s parts through segment %d (about %s)",
		p.cfg.Viewers, p.cfg.Feed, p.cfg.Stagger, P, p.last, time.Until(lastEnd).Round(time.Second))

	ctx, cancel := context.WithDeadline(ctx, lastEnd.Add(D+15*time.Second))
	defer cancel()
	joins := p.joins()
	viewers := make([]PartsViewer, p.cfg.Viewers)
	var wg sync.WaitGroup
	for i := range viewers {
		wg.Go(func() {
			t := time.NewTimer(time.Until(start.Add(joins[i])))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				viewers[i] = PartsViewer{Viewer: i, Variant: p.variant(i), Err: "never joined: " + ctx.Err().Error()}
				return
			}
			viewers[i] = p.partsViewer(ctx, i)
		})
	}
	wg.Wait()

	res := &PartsResult{Config: p.cfg, Feed: d, Start: start, First: p.first, Last: p.last, Viewers: viewers}
	res.Offset = calibratePartsOffset(bound, d, viewers)
	res.analyse()
	return res, nil
}

// partsViewer is one viewer: the descriptor, upto/{k} of the part in
// progress, then every following part through the last part of p.last.
func (p *prober) partsViewer(ctx context.Context, i int) PartsViewer {
	v := PartsViewer{Viewer: i, Variant: p.variant(i), Entries: map[string]json.RawMessage{}}
	v.Joined = time.Now()
	var d FeedInfo
	if _, err := p.getJSON(ctx, "/v1/feeds/"+url.PathEscape(p.cfg.Feed), &d); err != nil {
		v.Err = err.Error()
		return v
	}
	if d.Parts != p.desc.Parts || d.Part < 0 || d.Part >= d.Parts {
		v.Err = fmt.Sprintf("descriptor: part %d of %d parts (the first descriptor said %d parts)", d.Part, d.Parts, p.desc.Parts)
		return v
	}
	n, k, upto := d.Segment, d.Part, true
	for {
		o := p.fetchPart(ctx, &v, n, k, upto)
		v.Fetches = append(v.Fetches, o)
		if o.Err != "" {
			v.Err = fmt.Sprintf("segment %d %s: %s", n, partName(k, upto), o.Err)
			return v
		}
		if upto && !v.have {
			v.Err = fmt.Sprintf("segment %d %s: no snapshot", n, partName(k, upto))
			return v
		}
		upto = false
		if k++; k == d.Parts {
			m, ok := segmentOf(o.NextURL)
			if o.NextURL == "" || !ok || m != n+1 {
				v.Err = fmt.Sprintf("segment %d: last part names next %q, want segment %d", n, o.NextURL, n+1)
				return v
			}
			n, k = m, 0
			if n > p.last {
				return v
			}
		}
	}
}

func partName(k int, upto bool) string {
	if upto {
		return "upto/" + strconv.Itoa(k)
	}
	return "parts/" + strconv.Itoa(k)
}

// fetchPart makes one parts-mode request and applies what it received to
// the viewer's state.
func (p *prober) fetchPart(ctx context.Context, v *PartsViewer, n int64, k int, upto bool) PartObservation {
	o := PartObservation{Viewer: v.Viewer, Variant: v.Variant, Segment: n, Part: k, Upto: upto}
	tmpl := p.desc.PartURL
	if upto {
		tmpl = p.desc.UptoURL
	}
	h, u := p.request(v.Viewer, v.Variant, partPath(tmpl, n, k))
	o.Requested = time.Now()
	resp, err := p.get(ctx, u, h)
	if err != nil {
		o.Done, o.Err = time.Now(), err.Error()
		return o
	}
	defer resp.Body.Close()
	o.Headers = time.Now()
	o.Status = resp.StatusCode
	o.Header = resp.Header
	o.ResponseID = resp.Header.Get(HeaderResponseID)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		o.Done, o.Err = time.Now(), fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		return o
	}
	tr := &timedReader{r: io.LimitReader(resp.Body, maxPartBytes+1), start: o.Requested, h: sha256.New()}
	raw, err := io.ReadAll(tr)
	o.Done = time.Now()
	o.FirstByte = o.Headers
	if len(tr.reads) > 0 {
		o.FirstByte = o.Requested.Add(tr.reads[0])
	}
	switch {
	case err != nil:
		o.Err = "read: " + err.Error()
		return o
	case len(raw) > maxPartBytes:
		o.Err = fmt.Sprintf("part longer than %d bytes", maxPartBytes)
		return o
	}
	body := raw
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, maxPartBytes))
		}
		if err != nil {
			o.Err = "gzip: " + err.Error()
			return o
		}
	}
	o.Bytes = len(body)
	o.Sum = sha256.Sum256(body)
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\n\n")) {
		o.Err = "body does not end at an event boundary"
		return o
	}
	dec := sse.NewDecoder(bytes.NewReader(body))
	dec.OnComment = func(text string) {
		if text == "keepalive" {
			o.Keepalives++
		}
	}
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			o.Err = "decode: " + err.Error()
			return o
		}
		switch ev.Type {
		case "snapshot":
			var s struct {
				Seq     uint64                     `json:"seq"`
				Time    int64                      `json:"time"`
				Entries map[string]json.RawMessage `json:"entries"`
			}
			if err := json.Unmarshal(ev.Data, &s); err != nil {
				o.Err = "snapshot: " + err.Error()
				return o
			}
			o.Snapshot, o.SnapshotSeq, o.SnapshotTime = true, s.Seq, s.Time
			v.applySnapshot(n, s.Seq, s.Entries)
		case "update":
			var u struct {
				Key   string          `json:"key"`
				Seq   uint64          `json:"seq"`
				Time  int64           `json:"time"`
				Value json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				o.Err = "update: " + err.Error()
				return o
			}
			te := TimedEvent{Seq: u.Seq, Time: u.Time, Arrived: o.Done}
			o.Updates = append(o.Updates, te)
			v.applyUpdate(n, u.Key, u.Value, te)
		case "next":
			var nx struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(ev.Data, &nx) == nil {
				o.NextURL = nx.URL
			}
		}
	}
	o.Complete = true
	return o
}

// applySnapshot applies a snapshot the way marquee's client does: the first
// one is the state; a later one (at each segment start) must carry exactly
// the seq and entries the viewer already holds.
func (v *PartsViewer) applySnapshot(n int64, seq uint64, entries map[string]json.RawMessage) {
	if entries == nil {
		entries = map[string]json.RawMessage{}
	}
	switch {
	case !v.have:
		v.have, v.FirstSeq = true, seq
	case seq > v.Seq:
		v.Problems = append(v.Problems, fmt.Sprintf("segment %d: snapshot at seq %d above the %d held: updates were missed", n, seq, v.Seq))
	case seq < v.Seq:
		v.Problems = append(v.Problems, fmt.Sprintf("segment %d: snapshot at seq %d below the %d held", n, seq, v.Seq))
		return
	default:
		if !sameEntries(v.Entries, entries) {
			v.Problems = append(v.Problems, fmt.Sprintf("segment %d: snapshot at seq %d differs from the state built from updates", n, seq))
		}
	}
	v.Seq, v.Entries = seq, entries
}

// applyUpdate applies an update whose seq is above the one held and drops
// any other.
func (v *PartsViewer) applyUpdate(n int64, key string, value json.RawMessage, te TimedEvent) {
	if !v.have {
		v.Problems = append(v.Problems, fmt.Sprintf("segment %d: update %d before any snapshot", n, te.Seq))
		return
	}
	if te.Seq <= v.Seq {
		v.Dropped++
		return
	}
	if len(value) == 0 || string(value) == "null" {
		delete(v.Entries, key)
	} else {
		v.Entries[key] = value
	}
	v.Seq = te.Seq
	v.Applied = append(v.Applied, te)
}

func sameEntries(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if vb, ok := b[k]; !ok || !bytes.Equal(va, vb) {
			return false
		}
	}
	return true
}

// calibratePartsOffset tightens the clock offset estimate as calibrateOffset
// does, with one more lower bound: the origin finishes part k of segment n
// no earlier than the part's end, so no byte of it arrives before then.
func calibratePartsOffset(offset time.Duration, d FeedInfo, vs []PartsViewer) time.Duration {
	D, P := d.segLen().Milliseconds(), d.partLen().Milliseconds()
	for _, v := range vs {
		for _, o := range v.Fetches {
			if o.Status != http.StatusOK || o.FirstByte.IsZero() {
				continue
			}
			end := time.UnixMilli(o.Segment*D + int64(o.Part+1)*P)
			offset = max(offset, end.Sub(o.FirstByte))
			if o.Snapshot {
				offset = max(offset, time.UnixMilli(o.SnapshotTime).Sub(o.Done))
			}
			for _, u := range o.Updates {
				offset = max(offset, time.UnixMilli(u.Time).Sub(u.Arrived))
			}
		}
	}
	return offset
}

type partKey struct {
	n    int64
	k    int
	upto bool
}

func (r *PartsResult) analyse() {
	d := r.Feed
	D, P := d.segLen().Milliseconds(), d.partLen().Milliseconds()
	local := func(ms int64) time.Time { return time.UnixMilli(ms).Add(-r.Offset) }
	partEnd := func(n int64, k int) time.Time { return local(n*D + int64(k+1)*P) }
	slack := r.Config.PartSlack

	groups := map[partKey][]*PartObservation{}
	r.Headers = map[string]map[string]int{}
	r.Variants = map[string][2]int{}
	var stopped []string
	var notOnce []string
	for vi := range r.Viewers {
		v := &r.Viewers[vi]
		if v.Err != "" {
			stopped = append(stopped, fmt.Sprintf("viewer %d: %s", v.Viewer, v.Err))
		}
		if len(v.Problems) > 0 || v.Dropped > 0 {
			why := fmt.Sprintf("%d duplicates dropped", v.Dropped)
			if len(v.Problems) > 0 {
				why = v.Problems[0]
			}
			notOnce = append(notOnce, fmt.Sprintf("viewer %d: %s", v.Viewer, why))
		} else if len(v.Fetches) > 0 && v.have {
			r.ExactlyOnce++
		}
		for fi := range v.Fetches {
			o := &v.Fetches[fi]
			key := partKey{o.Segment, o.Part, o.Upto}
			groups[key] = append(groups[key], o)
			if o.Status == 0 {
				continue
			}
			countHeaders(r.Headers, o.Header)
			if o.Status != http.StatusOK || o.FirstByte.IsZero() {
				continue
			}
			from := o.Requested
			if end := partEnd(o.Segment, o.Part); from.Before(end) {
				r.Held++
				from = end
			}
			w := o.FirstByte.Sub(from)
			r.Wait = append(r.Wait, w)
			if w > slack {
				r.Late++
			}
			if fi == 0 && o.Complete {
				r.JoinTime = append(r.JoinTime, o.Done.Sub(v.Joined))
			}
		}
		for _, u := range v.Applied {
			if pub := local(u.Time); !pub.Before(v.Joined) {
				r.Latency = append(r.Latency, u.Arrived.Sub(pub))
			}
		}
	}

	keys := make([]partKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b partKey) int {
		if c := cmp.Compare(a.n, b.n); c != 0 {
			return c
		}
		if a.upto != b.upto {
			if a.upto {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.k, b.k)
	})
	judge := collapseJudge{minRatio: r.Config.MinCollapseRatio, unit: "part", nameAll: true, variants: r.Variants}
	for _, key := range keys {
		rs := partResponses(groups[key])
		st := PartStats{Segment: key.n, Part: key.k, Upto: key.upto, Collapse: collapseOf(rs)}
		r.Parts = append(r.Parts, st)
		judge.add(st.Collapse, rs, "for", fmt.Sprintf("%s of segment %d", partName(key.k, key.upto), key.n))
	}
	problems := judge.verdict()
	if len(r.Wait) > 0 && 2*r.Late > len(r.Wait) {
		problems = append(problems, fmt.Sprintf("late: %d of %d parts arrived more than %s after their part ended or was requested (wait: %s)",
			r.Late, len(r.Wait), slack, r.Wait))
	}
	if len(notOnce) > 0 {
		problems = append(problems, fmt.Sprintf("not exactly once: %d viewers (first: %s)", len(notOnce), notOnce[0]))
	}
	if len(stopped) > 0 && len(stopped)*10 > len(r.Viewers) {
		problems = append(problems, fmt.Sprintf("errors: %d of %d viewers stopped early (first: %s)", len(stopped), len(r.Viewers), stopped[0]))
	}
	if len(problems) == 0 {
		per := "1 origin response per part"
		if m := maxResponses(r.Parts); m > 1 {
			per = fmt.Sprintf("at most %d origin responses per part", m)
		}
		r.Pass = true
		r.Verdict = fmt.Sprintf("VERDICT: PASS parts mode collapses and is live (%d viewers, %s, median publish-to-viewer latency %s with %s parts)",
			len(r.Viewers), per, seconds(r.Latency.Quantile(0.5)), d.partLen())
		return
	}
	r.Verdict = "VERDICT: FAIL " + strings.Join(problems, "; ")
}

// seconds formats d as "0.52 s", or "7 ms" below a tenth of a second.
func seconds(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// maxPartViewers returns the most viewers any parts/{k} URL had.
func (r *PartsResult) maxPartViewers() int {
	m := 0
	for _, s := range r.Parts {
		if !s.Upto {
			m = max(m, s.Viewers)
		}
	}
	return m
}

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

// partResponses is what collapse judging needs of a part URL's observations.
func partResponses(os []*PartObservation) []response {
	rs := make([]response, len(os))
	for i, o := range os {
		rs[i] = response{status: o.Status, id: o.ResponseID, variant: o.Variant, complete: o.Complete, sum: o.Sum, bytes: o.Bytes}
	}
	return rs
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
	names := make([]string, 0, len(r.Headers))
	for n := range r.Headers {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Compare(slices.Index(headersReported, a), slices.Index(headersReported, b))
	})
	for _, n := range names {
		vals := make([]string, 0, len(r.Headers[n]))
		for v, c := range r.Headers[n] {
			vals = append(vals, fmt.Sprintf("%q ×%d", v, c))
		}
		slices.Sort(vals)
		if len(vals) > 4 {
			vals = append(vals[:4], fmt.Sprintf("… %d more", len(vals)-4))
		}
		fmt.Fprintf(w, "  %-30s %s\n", n+":", strings.Join(vals, ", "))
	}
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
