package cdn

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"marquee/sse"
)

// This file is the logic of cmd/cdnprobe: it opens viewers through a CDN edge
// the way marquee's browser client does (the current segment, then each next
// one named by the "next" event) and tells from what they received whether
// the edge collapses them into one origin response per segment, whether it
// streams or buffers, and how long late joiners and hand-overs take.
//
// Clocks: the probe compares arrival times (local clock) with times the
// origin wrote into the stream (the snapshot's and updates' "time", origin
// and NATS clock). It estimates the offset between the clocks as the tightest
// lower bound those times give (nothing arrives before it was written), so
// the smallest delivery delay it reports is zero by construction and every
// other delay is relative to it.

// Probe defaults.
const (
	DefaultProbeViewers     = 50
	DefaultMinCollapseRatio = 5.0
	maxProbeViewers         = 20000
)

// Names of the request variants a probe's viewers use (ProbeConfig.Noise).
const (
	VariantPlain       = "plain"         // what EventSource sends: Accept, Cache-Control: no-cache
	VariantCookie      = "cookie"        // plus a session cookie, as a same-site page sends
	VariantLastEventID = "last-event-id" // plus Last-Event-ID, as a reconnecting EventSource sends
	VariantQuery       = "query"         // plus a cache-busting query string
)

var allVariants = []string{VariantPlain, VariantCookie, VariantLastEventID, VariantQuery}

// ProbeConfig configures Probe. Zero values take the defaults given.
type ProbeConfig struct {
	// Base is the edge's base URL, e.g. "https://live.example.com".
	Base string
	// Feed is the feed to watch. Default: the first feed GET /v1/feeds lists.
	Feed string
	// Viewers is the number of viewers. Default 50, at most 20000.
	Viewers int
	// Stagger is the window over which viewers join. Default half a segment.
	Stagger time.Duration
	// Random makes viewers join at uniformly random moments within Stagger
	// instead of evenly spaced ones.
	Random bool
	// Follow is how many segments after the one in progress at the last
	// join every viewer still watches whole (cmd/cdnprobe uses 1, so that
	// every viewer goes through at least one hand-over). Default 0.
	Follow int
	// Noise makes the viewers' requests differ the ways real ones do:
	// viewer i uses variant allVariants[i%4] (cookie, Last-Event-ID, query
	// string). An edge must collapse them all.
	Noise bool
	// MinCollapseRatio is the fewest viewers per origin response on every
	// segment that counts as collapsing. Default 5.
	MinCollapseRatio float64
	// BufferThreshold is the delivery delay above which a response counts
	// as buffered. Default a quarter of a segment, within [500ms, 5s].
	BufferThreshold time.Duration
	// PartSlack (parts mode) is how long after its part ended (or after
	// the request, if later) a part may arrive and still count as live; the
	// edge is late when more than half the parts exceed it. Default half a
	// part, within [250ms, 2s].
	PartSlack time.Duration
	// Header is added to every request (e.g. to reach a staging edge).
	Header http.Header
	// Client makes the requests. Default: a client of its own that keeps
	// one connection per viewer and never decompresses by itself.
	Client *http.Client
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

// FeedInfo is the part of the feed descriptor (GET /v1/feeds/{feed}) the
// probe uses.
type FeedInfo struct {
	Feed          string  `json:"feed"`
	SegmentLength float64 `json:"segment_length"`
	Keepalive     float64 `json:"keepalive"`
	Segment       int64   `json:"segment"`
	URL           string  `json:"url"`
	SegmentStart  int64   `json:"segment_start"`
	SegmentEnd    int64   `json:"segment_end"`
	ServerTime    int64   `json:"server_time"`
	Mode          string  `json:"mode"` // the mode the origin tells clients to use

	// Parts mode (absent from origins that predate it).
	PartLength float64 `json:"part_length"` // seconds
	Parts      int     `json:"parts"`       // parts per segment
	Part       int     `json:"part"`        // part in progress of Segment
	PartURL    string  `json:"part_url"`    // template: {n} segment, {k} part
	UptoURL    string  `json:"upto_url"`    // template: {n} segment, {k} part
}

// segLen returns the segment length.
func (d FeedInfo) segLen() time.Duration {
	return time.Duration(d.SegmentLength * float64(time.Second))
}

// urlOf returns the path of segment n, built from the descriptor's URL of
// the current segment.
func (d FeedInfo) urlOf(n int64) string {
	i := strings.LastIndexByte(d.URL, '/')
	return d.URL[:i+1] + strconv.FormatInt(n, 10)
}

// Observation is what one viewer received for one segment. Times are on the
// local clock; ProbeResult.Offset converts them to the origin's.
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

// TimedEvent is an event the origin stamped with the time it happened.
type TimedEvent struct {
	Seq     uint64
	Time    int64     // unix ms, origin (NATS) clock
	Arrived time.Time // local clock
}

// ProbeResult is everything a probe observed and what it concludes.
type ProbeResult struct {
	Config       ProbeConfig
	Feed         FeedInfo
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

// Durations is a sample of durations.
type Durations []time.Duration

// Quantile returns the q-quantile (0..1) by nearest rank, 0 when empty.
func (d Durations) Quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(max(i, 0), len(s)-1)]
}

// Max returns the largest duration, 0 when empty.
func (d Durations) Max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// String formats the sample as "p50 x, p99 y, max z (n)".
func (d Durations) String() string {
	if len(d) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%d)", round(d.Quantile(0.5)), round(d.Quantile(0.99)), round(d.Max()), len(d))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}

// Probe runs viewers through the edge at cfg.Base and returns what they saw
// and the verdict. It returns an error only when it cannot start (no
// descriptor); a failing edge is a result with Pass false. It ends when every
// viewer has watched its last segment or ctx is done.
func Probe(ctx context.Context, cfg ProbeConfig) (*ProbeResult, error) {
	p, bound, err := newProber(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	cfg = p.cfg
	d := p.desc
	offset := p.offset
	D := d.segLen()
	start := time.Now()
	p.start = start
	p.first = p.index(start)
	p.last = p.index(start.Add(p.cfg.Stagger-time.Millisecond)) + int64(p.cfg.Follow)
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

	res := &ProbeResult{Config: p.cfg, Feed: d, Start: start, First: p.first, Last: p.last}
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

// newProber validates cfg, fills in its defaults and fetches the feed
// descriptor. It returns the prober and a lower bound of the clock offset
// (see descriptor). The caller must call close.
func newProber(ctx context.Context, cfg ProbeConfig) (*prober, time.Duration, error) {
	if cfg.Viewers == 0 {
		cfg.Viewers = DefaultProbeViewers
	}
	if cfg.Viewers < 1 || cfg.Viewers > maxProbeViewers {
		return nil, 0, fmt.Errorf("probe: viewers must be between 1 and %d, got %d", maxProbeViewers, cfg.Viewers)
	}
	if cfg.Follow < 0 {
		return nil, 0, fmt.Errorf("probe: follow must not be negative, got %d", cfg.Follow)
	}
	if cfg.MinCollapseRatio <= 0 {
		cfg.MinCollapseRatio = DefaultMinCollapseRatio
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	base, err := url.Parse(strings.TrimRight(cfg.Base, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, 0, fmt.Errorf("probe: base URL must be http(s)://host[:port], got %q", cfg.Base)
	}
	p := &prober{cfg: cfg, base: base, client: cfg.Client}
	if p.client == nil {
		p.client = newProbeClient(cfg.Viewers)
		p.ownClient = true
	}
	if p.cfg.Feed == "" {
		if p.cfg.Feed, err = p.firstFeed(ctx); err != nil {
			p.close()
			return nil, 0, err
		}
	}
	d, bound, err := p.descriptor(ctx)
	if err != nil {
		p.close()
		return nil, 0, err
	}
	// Schedule on the local clock unless it is clearly off: the bound is up
	// to the descriptor's max-age (1s) plus a round trip below the truth.
	p.desc = d
	if bound < -2*time.Second || bound > 2*time.Second {
		p.offset = bound + 500*time.Millisecond
	}
	D := d.segLen()
	if D <= 0 {
		p.close()
		return nil, 0, fmt.Errorf("probe: descriptor has no segment length")
	}
	if p.cfg.Stagger <= 0 {
		p.cfg.Stagger = D / 2
	}
	if p.cfg.BufferThreshold <= 0 {
		p.cfg.BufferThreshold = min(max(D/4, 500*time.Millisecond), 5*time.Second)
	}
	return p, bound, nil
}

// close releases the connections of a client the prober made itself.
func (p *prober) close() {
	if p.ownClient {
		p.client.CloseIdleConnections()
	}
}

// joins returns when each viewer joins, after the start: evenly spaced
// over the stagger window, or at random moments within it.
func (p *prober) joins() []time.Duration {
	joins := make([]time.Duration, p.cfg.Viewers)
	for i := range joins {
		if p.cfg.Random {
			joins[i] = time.Duration(rand.Int64N(int64(p.cfg.Stagger)))
		} else {
			joins[i] = p.cfg.Stagger * time.Duration(i) / time.Duration(p.cfg.Viewers)
		}
	}
	return joins
}

// newProbeClient returns an HTTP client with one connection per viewer and
// no automatic decompression (the probe wants to see Content-Encoding).
func newProbeClient(viewers int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          viewers + 10,
		MaxIdleConnsPerHost:   viewers + 10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}}
}

type prober struct {
	cfg       ProbeConfig
	base      *url.URL
	client    *http.Client
	ownClient bool // client was made by newProber: close its connections at the end
	desc      FeedInfo
	offset    time.Duration // for scheduling joins; measurements use calibrateOffset
	start     time.Time
	first     int64
	last      int64
}

// index returns the segment in progress at local time t.
func (p *prober) index(t time.Time) int64 {
	ms := t.Add(p.offset).UnixMilli()
	return ms / p.desc.segLen().Milliseconds()
}

func (p *prober) resolve(path string) string {
	ref, err := url.Parse(path)
	if err != nil {
		return p.base.String() + path
	}
	return p.base.ResolveReference(ref).String()
}

func (p *prober) get(ctx context.Context, u string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range p.cfg.Header {
		req.Header[k] = slices.Clone(vs)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "marquee-cdnprobe/1")
	}
	return p.client.Do(req)
}

func (p *prober) getJSON(ctx context.Context, path string, v any) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := p.get(ctx, p.resolve(path), http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, fmt.Errorf("probe: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("probe: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("probe: GET %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("probe: GET %s: %w", path, err)
	}
	return resp, nil
}

func (p *prober) firstFeed(ctx context.Context) (string, error) {
	var list struct {
		Feeds []struct {
			Feed string `json:"feed"`
		} `json:"feeds"`
	}
	if _, err := p.getJSON(ctx, "/v1/feeds", &list); err != nil {
		return "", err
	}
	if len(list.Feeds) == 0 {
		return "", errors.New("probe: the edge lists no feeds")
	}
	return list.Feeds[0].Feed, nil
}

// descriptor fetches the feed descriptor and a lower bound of the clock
// offset: server_time can only be older than the moment the response
// arrived (an edge may have cached it), so server_time - arrival is at most
// the offset.
func (p *prober) descriptor(ctx context.Context) (FeedInfo, time.Duration, error) {
	var d FeedInfo
	if _, err := p.getJSON(ctx, "/v1/feeds/"+url.PathEscape(p.cfg.Feed), &d); err != nil {
		return d, 0, err
	}
	recv := time.Now()
	if d.SegmentLength <= 0 || d.URL == "" || !strings.Contains(d.URL, "/segments/") {
		return d, 0, fmt.Errorf("probe: feed %q: descriptor without segment length or URL (is %s a marquee edge?)", p.cfg.Feed, p.cfg.Base)
	}
	return d, time.UnixMilli(d.ServerTime).Sub(recv), nil
}

// variant returns viewer i's request variant.
func (p *prober) variant(i int) string {
	if !p.cfg.Noise {
		return VariantPlain
	}
	return allVariants[i%len(allVariants)]
}

// viewer watches segments from the one in progress now through p.last.
func (p *prober) viewer(ctx context.Context, i int) ([]Observation, string) {
	var obs []Observation
	n := p.index(time.Now())
	path := p.desc.urlOf(n)
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

// request returns the headers and URL viewer i (of the given variant) sends
// for path: what EventSource sends, plus the variant's noise.
func (p *prober) request(i int, variant, path string) (http.Header, string) {
	h := http.Header{
		"Accept":          {"text/event-stream"},
		"Cache-Control":   {"no-cache"},
		"Accept-Encoding": {"gzip, deflate, br"},
	}
	u := p.resolve(path)
	switch variant {
	case VariantCookie:
		h.Set("Cookie", "session=viewer"+strconv.Itoa(i)+"; theme=dark")
	case VariantLastEventID:
		h.Set("Last-Event-ID", strconv.Itoa(1000+i))
	case VariantQuery:
		u += "?cb=" + strconv.Itoa(i) + "&t=" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	return h, u
}

// segmentOf parses the segment index at the end of a segment URL.
func segmentOf(path string) (int64, bool) {
	i := strings.LastIndexByte(path, '/')
	n, err := strconv.ParseInt(path[i+1:], 10, 64)
	return n, err == nil
}

// watch reads one segment response.
func (p *prober) watch(ctx context.Context, i int, n int64, path string) Observation {
	o := Observation{Viewer: i, Variant: p.variant(i), Segment: n}
	h, u := p.request(i, o.Variant, path)
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
		case "snapshot":
			o.Snapshot = tr.last
			var s struct {
				Seq  uint64 `json:"seq"`
				Time int64  `json:"time"`
			}
			if json.Unmarshal(ev.Data, &s) == nil {
				o.SnapshotSeq, o.SnapshotTime = s.Seq, s.Time
			}
		case "update":
			var u struct {
				Seq  uint64 `json:"seq"`
				Time int64  `json:"time"`
			}
			if json.Unmarshal(ev.Data, &u) == nil {
				o.Updates = append(o.Updates, TimedEvent{Seq: u.Seq, Time: u.Time, Arrived: tr.last})
			}
		case "next":
			var nx struct {
				URL string `json:"url"`
			}
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

// timedReader records when body bytes arrive and hashes them.
type timedReader struct {
	r     io.Reader
	start time.Time
	h     interface {
		io.Writer
		Sum([]byte) []byte
	}
	n     int
	last  time.Time
	reads []time.Duration
}

func (t *timedReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n > 0 {
		t.last = time.Now()
		t.reads = append(t.reads, t.last.Sub(t.start))
		t.n += n
		t.h.Write(b[:n])
	}
	return n, err
}

// calibrateOffset tightens the clock offset estimate: for every event the
// origin stamped (snapshot at the segment start, updates at publication),
// origin time <= arrival on the origin clock, so offset >= stamp - arrival.
func calibrateOffset(offset time.Duration, obs []Observation) time.Duration {
	for _, o := range obs {
		if o.SnapshotTime > 0 && !o.Snapshot.IsZero() {
			offset = max(offset, time.UnixMilli(o.SnapshotTime).Sub(o.Snapshot))
		}
		for _, u := range o.Updates {
			offset = max(offset, time.UnixMilli(u.Time).Sub(u.Arrived))
		}
	}
	return offset
}

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

// headersReported are the response headers a probe reports.
var headersReported = []string{
	"Cache-Control", "CDN-Cache-Control", "Surrogate-Control", "Age", "X-Cache", "X-Cache-Hits",
	"CF-Cache-Status", "X-Served-By", "Via", "Content-Type", "Content-Encoding", "Content-Length",
	"Vary", "Set-Cookie", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "X-Accel-Buffering",
}

func (r *ProbeResult) analyse() {
	d := r.Feed
	D := d.segLen()
	thr := r.Config.BufferThreshold
	ka := time.Duration(d.Keepalive * float64(time.Second))
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

// WriteReport writes a human-readable report ending with the verdict line.
func (r *ProbeResult) WriteReport(w io.Writer) {
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
