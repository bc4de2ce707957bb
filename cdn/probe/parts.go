package probe

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"marquee/sse"
	"marquee/wire"
)

// This file is parts mode, for edges that buffer cacheable responses
// (Cloudflare): each segment is also addressed in parts of P seconds,
// complete responses that the origin holds until the part is finished, so
// that the edge's ordinary collapsing of concurrent misses does the fan-out
// (LL-HLS's blocking reload). A viewer
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
	// Rejoins counts joins moved to the next part because the origin had
	// opened the segment mid-way and refused the part in progress then.
	Rejoins int

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
	Config      Config
	Feed        wire.Descriptor
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
	Variants    map[string][2]int // [shared, total], as StreamResult.Variants

	Pass    bool
	Verdict string
}

// Parts runs parts-mode viewers through the edge at cfg.Base and returns
// what they saw and the verdict. Viewers join over cfg.Stagger and
// follow parts through the last part of the segment cfg.Follow segments
// after the one in progress at the last join. It returns an error only when
// it cannot start (no descriptor, or an origin without parts mode).
func Parts(ctx context.Context, cfg Config) (*PartsResult, error) {
	p, bound, err := newProber(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	d := p.desc
	P := d.PartDuration()
	if P <= 0 || d.Parts < 1 || !strings.Contains(d.PartURL, "{k}") || !strings.Contains(d.UptoURL, "{k}") {
		return nil, fmt.Errorf("probe: feed %q: the descriptor offers no parts mode (part_length, parts, part_url, upto_url)", p.cfg.Feed)
	}
	if p.cfg.PartSlack <= 0 {
		p.cfg.PartSlack = min(max(P/2, 250*time.Millisecond), 2*time.Second)
	}
	D := d.SegmentDuration()
	start := p.begin()
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
	d, err := p.fetchDescriptor(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	if d.Parts != p.desc.Parts || d.Part < 0 || d.Part > d.Parts {
		v.Err = fmt.Sprintf("descriptor: part %d of %d parts (the first descriptor said %d parts)", d.Part, d.Parts, p.desc.Parts)
		return v
	}
	n, k, upto := d.Segment, d.Part, true
	if k == d.Parts {
		// The origin serves no part of the segment in progress (it opened
		// it in its last part): join at the next segment's start.
		n, k = n+1, 0
	}
	for {
		o := p.fetchPart(ctx, &v, n, k, upto)
		if upto && !v.have && o.Status == http.StatusGone && k+1 < d.Parts {
			// The origin opened this segment mid-way (it just started, or
			// the feed is new): the part that was in progress then is not
			// servable. Join at the next part, as client.js does.
			v.Rejoins++
			k++
			continue
		}
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
	path := p.desc.PartPath(n, k)
	if upto {
		path = p.desc.UptoPath(n, k)
	}
	h, u := p.request(v.Viewer, v.Variant, path)
	var st started
	resp, msg := p.open(ctx, u, h, &st)
	o.Requested, o.Headers, o.Status, o.Header, o.ResponseID = st.Requested, st.Headers, st.Status, st.Header, st.ResponseID
	if resp == nil {
		o.Done, o.Err = time.Now(), msg
		return o
	}
	defer resp.Body.Close()
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
		case wire.EventSnapshot:
			var s wire.Snapshot
			if err := json.Unmarshal(ev.Data, &s); err != nil {
				o.Err = "snapshot: " + err.Error()
				return o
			}
			o.Snapshot, o.SnapshotSeq, o.SnapshotTime = true, s.Seq, s.Time
			v.applySnapshot(n, s.Seq, s.Entries)
		case wire.EventUpdate:
			var u wire.Update
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				o.Err = "update: " + err.Error()
				return o
			}
			te := TimedEvent{Seq: u.Seq, Time: u.Time, Arrived: o.Done}
			o.Updates = append(o.Updates, te)
			if v.have && u.Prev > v.Seq {
				// The update says the feed was at prev before it: what
				// lies between the seq held and prev never reached this
				// viewer (parts from replicas that disagree, or a broken
				// edge).
				v.Problems = append(v.Problems, fmt.Sprintf("segment %d: gap: update %d follows %d, held %d", n, u.Seq, u.Prev, v.Seq))
			}
			v.applyUpdate(n, u.Key, u.Value, te)
		case wire.EventNext:
			var nx wire.Next
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

type partKey struct {
	n    int64
	k    int
	upto bool
}

func (r *PartsResult) analyse() {
	d := r.Feed
	D, P := d.SegmentDuration().Milliseconds(), d.PartDuration().Milliseconds()
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
			len(r.Viewers), per, seconds(r.Latency.Quantile(0.5)), d.PartDuration())
		return
	}
	r.Verdict = "VERDICT: FAIL " + strings.Join(problems, "; ")
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

// partResponses is what collapse judging needs of a part URL's observations.
func partResponses(os []*PartObservation) []response {
	rs := make([]response, len(os))
	for i, o := range os {
		rs[i] = response{status: o.Status, id: o.ResponseID, variant: o.Variant, complete: o.Complete, sum: o.Sum, bytes: o.Bytes}
	}
	return rs
}
