package probe

import (
	"bytes"
	"context"
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
	"time"

	"marquee/cdn"
	"marquee/wire"
)

// prober is what the viewers of one probe share: the configuration with
// its defaults, the HTTP client, the descriptor and the schedule.
type prober struct {
	cfg       Config
	base      *url.URL
	client    *http.Client
	ownClient bool // client was made by newProber: close its connections at the end
	desc      wire.Descriptor
	offset    time.Duration // for scheduling joins; measurements use calibrateOffset
	start     time.Time
	first     int64
	last      int64
}

// newProber validates cfg, fills in its defaults and fetches the feed
// descriptor. It returns the prober and a lower bound of the clock offset
// (see descriptor). The caller must call close.
func newProber(ctx context.Context, cfg Config) (*prober, time.Duration, error) {
	cfg, base, err := cfg.withDefaults()
	if err != nil {
		return nil, 0, err
	}
	p := &prober{cfg: cfg, base: base, client: cfg.Client}
	if p.client == nil {
		p.client = newClient(cfg.Viewers)
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
	D := d.SegmentDuration()
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

// newClient returns an HTTP client with one connection per viewer and no
// automatic decompression (the probe wants to see Content-Encoding).
func newClient(viewers int) *http.Client {
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

// begin starts the run now: the join window (JoinBy, if set, else
// Stagger from now), the first segment and the last one every viewer
// follows.
func (p *prober) begin() time.Time {
	start := time.Now()
	if !p.cfg.JoinBy.IsZero() {
		p.cfg.Stagger = max(p.cfg.JoinBy.Sub(start), time.Millisecond)
	}
	p.start = start
	p.first = p.index(start)
	p.last = p.index(start.Add(p.cfg.Stagger-time.Millisecond)) + int64(p.cfg.Follow)
	return start
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

// index returns the segment in progress at local time t.
func (p *prober) index(t time.Time) int64 {
	ms := t.Add(p.offset).UnixMilli()
	return ms / p.desc.SegmentDuration().Milliseconds()
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
	var list wire.FeedList
	if _, err := p.getJSON(ctx, "/v1/feeds", &list); err != nil {
		return "", err
	}
	if len(list.Feeds) == 0 {
		return "", errors.New("probe: the edge lists no feeds")
	}
	return list.Feeds[0].Feed, nil
}

// fetchDescriptor fetches the feed descriptor.
func (p *prober) fetchDescriptor(ctx context.Context) (wire.Descriptor, error) {
	var d wire.Descriptor
	_, err := p.getJSON(ctx, "/v1/feeds/"+url.PathEscape(p.cfg.Feed), &d)
	return d, err
}

// descriptor fetches the feed descriptor and a lower bound of the clock
// offset: server_time can only be older than the moment the response
// arrived (an edge may have cached it), so server_time - arrival is at most
// the offset.
func (p *prober) descriptor(ctx context.Context) (wire.Descriptor, time.Duration, error) {
	d, err := p.fetchDescriptor(ctx)
	if err != nil {
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

// started is what a viewer records of a request up to its response's
// headers.
type started struct {
	Requested, Headers time.Time
	Status             int
	Header             http.Header
	ResponseID         string
}

// open requests u with h, recording into st when it was asked for and what
// its headers said. It returns the response when it is 200 (the caller
// closes it); otherwise nil and the error text: the transport's error, or
// the status with up to 512 bytes of the refusal's body.
func (p *prober) open(ctx context.Context, u string, h http.Header, st *started) (*http.Response, string) {
	st.Requested = time.Now()
	resp, err := p.get(ctx, u, h)
	if err != nil {
		return nil, err.Error()
	}
	st.Headers = time.Now()
	st.Status, st.Header, st.ResponseID = resp.StatusCode, resp.Header, resp.Header.Get(cdn.HeaderResponseID)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp, ""
}
