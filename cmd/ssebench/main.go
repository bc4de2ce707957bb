// Command ssebench is a load generator and latency meter for marquee: it
// opens many viewers against an origin or an edge, follows segments the way
// marquee's browser client does (stream mode), follows parts (parts mode:
// the descriptor, upto/{k} of the part in progress, then parts/{k+1}, … one
// request outstanding, across segment boundaries) or holds direct-mode
// streams, and reports how many were connected, time to first byte,
// publish-to-receive latency of updates, hand-over gaps, bytes and errors.
//
//	ssebench -url http://127.0.0.1:6081 -feed prices -viewers 1000 -duration 60s -ramp 10s
//	ssebench -url http://127.0.0.1:6081 -feed prices -viewers 1000 -mode parts
//
// It is bounded: it stops by itself after -duration (viewers join evenly
// over -ramp within it) and never opens more than -viewers streams at once.
// Latency is measured against the "time" (unix ms) each update carries,
// which is the NATS server's clock: run it on the same host or a host with
// a synchronised clock. To open more connections than one source address
// has ephemeral ports for, spread them with -local-addrs 127.0.0.1-127.0.0.20.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"marquee/sse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ssebench:", err)
		}
		os.Exit(2)
	}
}

// config is the command line.
type config struct {
	base       *url.URL
	feed       string
	viewers    int
	duration   time.Duration
	ramp       time.Duration
	mode       string
	localAddrs []netip.Addr
	json       bool
}

const maxViewers = 100000

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("ssebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "base URL of the origin or edge, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&c.feed, "feed", "", "feed to watch (default: the first one listed)")
	fs.IntVar(&c.viewers, "viewers", 100, "number of concurrent viewers")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "total run time, ramp included; it then stops")
	fs.DurationVar(&c.ramp, "ramp", 5*time.Second, "viewers join evenly over this time")
	fs.StringVar(&c.mode, "mode", "stream", "stream (segments, following next events), parts (upto/{k}, then parts/{k+1}, …) or direct (/events)")
	local := fs.String("local-addrs", "", "source addresses to spread connections over: a range 127.0.0.1-127.0.0.20 or a comma list")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	u, err := url.Parse(strings.TrimRight(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("-url must be http(s)://host[:port], got %q", *base)
	}
	c.base = u
	switch {
	case c.viewers < 1 || c.viewers > maxViewers:
		return c, fmt.Errorf("-viewers must be between 1 and %d, got %d", maxViewers, c.viewers)
	case c.duration <= 0 || c.duration > 24*time.Hour:
		return c, fmt.Errorf("-duration must be between 0 and 24h, got %s", c.duration)
	case c.ramp < 0 || c.ramp >= c.duration:
		return c, fmt.Errorf("-ramp must be at least 0 and shorter than -duration, got %s", c.ramp)
	case c.mode != "stream" && c.mode != "parts" && c.mode != "direct":
		return c, fmt.Errorf("-mode must be stream, parts or direct, got %q", c.mode)
	}
	if c.localAddrs, err = parseAddrs(*local); err != nil {
		return c, fmt.Errorf("-local-addrs: %w", err)
	}
	return c, nil
}

// parseAddrs parses "a-b" (an inclusive IPv4 range) or "a,b,c".
func parseAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, err := netip.ParseAddr(from)
		if err != nil {
			return nil, err
		}
		b, err := netip.ParseAddr(to)
		if err != nil {
			return nil, err
		}
		if b.Less(a) {
			return nil, fmt.Errorf("range %s is backwards", s)
		}
		var out []netip.Addr
		for x := a; x.Compare(b) <= 0; x = x.Next() {
			if len(out) == 65536 {
				return nil, fmt.Errorf("range %s is too large", s)
			}
			out = append(out, x)
		}
		return out, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	b := newBench(cfg)
	defer b.client.CloseIdleConnections()
	if err := b.describe(ctx); err != nil {
		return err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.viewers {
		wg.Go(func() {
			t := time.NewTimer(cfg.ramp * time.Duration(i) / time.Duration(cfg.viewers))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			switch cfg.mode {
			case "direct":
				b.direct(ctx)
			case "parts":
				b.parts(ctx)
			default:
				b.stream(ctx)
			}
		})
	}
	<-ctx.Done()
	endConnected := b.connected.Load()
	wg.Wait()
	r := b.report(time.Since(start), endConnected)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "ssebench %s feed %s mode %s: %d viewers for %s\n", r.URL, r.Feed, r.Mode, r.Viewers, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  connected:   peak %d, at end %d\n", r.PeakConnected, r.EndConnected)
	switch cfg.mode {
	case "parts":
		fmt.Fprintf(stdout, "  requests:    %d (parts completed %d, segments completed %d)\n", r.Requests, r.Parts, r.Segments)
		fmt.Fprintf(stdout, "  ttfb:        p50 %.1fms, p99 %.1fms (join to the first byte of upto/{k}, held until the part ends)\n", r.TTFBP50, r.TTFBP99)
	default:
		fmt.Fprintf(stdout, "  requests:    %d (segments completed %d)\n", r.Requests, r.Segments)
		fmt.Fprintf(stdout, "  ttfb:        p50 %.1fms, p99 %.1fms (first request of each viewer)\n", r.TTFBP50, r.TTFBP99)
	}
	if cfg.mode == "stream" {
		fmt.Fprintf(stdout, "  hand-over:   p50 %.1fms, p99 %.1fms (end of a segment to first byte of the next)\n", r.HandoverP50, r.HandoverP99)
	}
	fmt.Fprintf(stdout, "  latency:     p50 %.1fms, p99 %.1fms, max %.1fms (publish to receive, %d updates)\n", r.LatencyP50, r.LatencyP99, r.LatencyMax, r.Updates)
	fmt.Fprintf(stdout, "  received:    %d events, %d keepalives, %d bytes\n", r.Events, r.Keepalives, r.Bytes)
	fmt.Fprintf(stdout, "  errors:      %d %s\n", r.Errors, strings.Join(r.ErrorKinds, ", "))
	return nil
}

// bench is the shared state of one run; every counter is atomic.
type bench struct {
	cfg    config
	client *http.Client

	segLen  time.Duration
	urlBase string // segment URL without its index
	offset  time.Duration

	desc descriptor // as describe fetched it

	connected, peak                     atomic.Int64
	requests, segments, events, updates atomic.Int64
	partsDone                           atomic.Int64
	keepalives, bytes                   atomic.Int64
	ttfb, handover, latency             *histogram

	mu     sync.Mutex // guards errs
	errs   map[string]int64
	nextIP atomic.Uint64
}

func newBench(cfg config) *bench {
	b := &bench{cfg: cfg, ttfb: newHistogram(), handover: newHistogram(), latency: newHistogram(), errs: map[string]int64{}}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if len(cfg.localAddrs) > 0 {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := *dialer
			ip := cfg.localAddrs[b.nextIP.Add(1)%uint64(len(cfg.localAddrs))]
			d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
			return d.DialContext(ctx, network, addr)
		}
	}
	b.client = &http.Client{Transport: &http.Transport{
		DialContext:         dial,
		MaxIdleConns:        cfg.viewers + 10,
		MaxIdleConnsPerHost: cfg.viewers + 10,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
	return b
}

func (b *bench) fail(kind string) {
	b.mu.Lock()
	b.errs[kind]++
	b.mu.Unlock()
}

func (b *bench) get(ctx context.Context, path string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.base.String()+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "marquee-ssebench/1")
	b.requests.Add(1)
	return b.client.Do(req)
}

// describe fetches the feed descriptor once; viewers compute segment
// numbers from it (a real client fetches it itself; at the edge that fetch
// is cached and costs the origin nothing).
func (b *bench) describe(ctx context.Context) error {
	getJSON := func(path string, v any) error {
		resp, err := b.get(ctx, path, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		return json.Unmarshal(body, v)
	}
	if b.cfg.feed == "" {
		var list struct {
			Feeds []struct {
				Feed string `json:"feed"`
			} `json:"feeds"`
		}
		if err := getJSON("/v1/feeds", &list); err != nil {
			return err
		}
		if len(list.Feeds) == 0 {
			return errors.New("no feeds listed")
		}
		b.cfg.feed = list.Feeds[0].Feed
	}
	var d descriptor
	if err := getJSON("/v1/feeds/"+url.PathEscape(b.cfg.feed), &d); err != nil {
		return err
	}
	i := strings.LastIndexByte(d.URL, '/')
	if d.SegmentLength <= 0 || i < 0 {
		return fmt.Errorf("feed %s: descriptor without segment length or URL", b.cfg.feed)
	}
	if b.cfg.mode == "parts" && (d.Parts < 1 || !strings.Contains(d.PartURL, "{k}") || !strings.Contains(d.UptoURL, "{k}")) {
		return fmt.Errorf("feed %s: the descriptor offers no parts mode", b.cfg.feed)
	}
	b.desc = d
	b.segLen = time.Duration(d.SegmentLength * float64(time.Second))
	b.urlBase = d.URL[:i+1]
	// The local clock unless it is clearly off (the descriptor may be up to
	// 1s old at an edge).
	if off := time.Until(time.UnixMilli(d.ServerTime)); off < -2*time.Second || off > 2*time.Second {
		b.offset = off + 500*time.Millisecond
	}
	return nil
}

// descriptor is the part of the feed descriptor ssebench uses.
type descriptor struct {
	SegmentLength float64 `json:"segment_length"`
	URL           string  `json:"url"`
	ServerTime    int64   `json:"server_time"`
	Segment       int64   `json:"segment"`
	Parts         int     `json:"parts"`
	Part          int     `json:"part"`
	PartURL       string  `json:"part_url"`
	UptoURL       string  `json:"upto_url"`
}

func (b *bench) current() int64 {
	return time.Now().Add(b.offset).UnixMilli() / b.segLen.Milliseconds()
}

// open counts a connected response until the returned func is called.
func (b *bench) open() func() {
	n := b.connected.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { b.connected.Add(-1) }
}

// stream is one stream-mode viewer: the current segment, then each next one,
// until ctx ends. After an error it waits a retry interval and rejoins the
// current segment.
func (b *bench) stream(ctx context.Context) {
	path := b.urlBase + strconv.FormatInt(b.current(), 10)
	first := true
	var ended time.Time // when the previous segment's body ended
	for ctx.Err() == nil {
		sent := time.Now()
		resp, err := b.get(ctx, path, http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}})
		if err != nil {
			if ctx.Err() == nil {
				b.fail("connect")
				b.retry(ctx)
				path = b.urlBase + strconv.FormatInt(b.current(), 10)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			b.fail("status " + strconv.Itoa(resp.StatusCode))
			b.retry(ctx)
			path, first = b.urlBase+strconv.FormatInt(b.current(), 10), true
			continue
		}
		closeConn := b.open()
		next, err := b.read(resp.Body, sent, func(at time.Time) {
			if first {
				b.ttfb.add(at.Sub(sent))
				first = false
			} else if !ended.IsZero() {
				b.handover.add(at.Sub(ended))
			}
		})
		resp.Body.Close()
		closeConn()
		ended = time.Now()
		switch {
		case ctx.Err() != nil:
		case err != nil || next == "":
			if err == nil {
				err = errors.New("segment ended without next")
			}
			b.fail("read: " + errKind(err))
			b.retry(ctx)
			path, first, ended = b.urlBase+strconv.FormatInt(b.current(), 10), true, time.Time{}
		default:
			b.segments.Add(1)
			path = next
		}
	}
}

// parts is one parts-mode viewer, as marquee's client follows a feed behind
// an edge that buffers: it reads the descriptor (cached at an edge), asks
// for upto/{k} of the part in progress (the state so far, held until the
// part ends), then parts/{k+1}, {k+2}, … and after a segment's last part
// part 0 of the segment its next event names, one request outstanding,
// until ctx ends. It never asks for a part beyond the one after the part it
// has: an edge caches nothing but would hold a refusal for a while. After
// an error it waits a retry interval and joins again.
func (b *bench) parts(ctx context.Context) {
	h := http.Header{"Accept": {"text/event-stream"}}
	for ctx.Err() == nil {
		joined := time.Now()
		var d descriptor
		resp, err := b.get(ctx, "/v1/feeds/"+url.PathEscape(b.cfg.feed), http.Header{"Accept": {"application/json"}})
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("descriptor: status %d", resp.StatusCode)
			} else {
				err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d)
			}
			resp.Body.Close()
		}
		if err == nil && (d.Parts != b.desc.Parts || d.Part < 0 || d.Part >= d.Parts) {
			err = fmt.Errorf("descriptor: part %d of %d", d.Part, d.Parts)
		}
		if err != nil {
			if ctx.Err() == nil {
				b.fail("descriptor")
				b.retry(ctx)
			}
			continue
		}
		n, k, upto := d.Segment, d.Part, true
		var closeConn func()
		for ctx.Err() == nil {
			tmpl := b.desc.PartURL
			if upto {
				tmpl = b.desc.UptoURL
			}
			path := strings.NewReplacer("{n}", strconv.FormatInt(n, 10), "{k}", strconv.Itoa(k)).Replace(tmpl)
			resp, err := b.get(ctx, path, h)
			if err != nil {
				if ctx.Err() == nil {
					b.fail("connect")
				}
				break
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				b.fail("status " + strconv.Itoa(resp.StatusCode))
				break
			}
			first := upto
			next, err := b.read(resp.Body, joined, func(at time.Time) {
				if first {
					b.ttfb.add(at.Sub(joined))
				}
			})
			resp.Body.Close()
			if err != nil {
				if ctx.Err() == nil {
					b.fail("read: " + errKind(err))
				}
				break
			}
			if closeConn == nil {
				closeConn = b.open()
			}
			b.partsDone.Add(1)
			upto = false
			if k++; k < b.desc.Parts {
				continue
			}
			i := strings.LastIndexByte(next, '/')
			m, perr := strconv.ParseInt(next[i+1:], 10, 64)
			if next == "" || perr != nil || m != n+1 {
				b.fail("last part without next")
				break
			}
			b.segments.Add(1)
			n, k = m, 0
		}
		if closeConn != nil {
			closeConn()
		}
		if ctx.Err() == nil {
			b.retry(ctx)
		}
	}
}

// direct is one direct-mode viewer, resuming with Last-Event-ID after errors.
func (b *bench) direct(ctx context.Context) {
	path := "/v1/feeds/" + url.PathEscape(b.cfg.feed) + "/events"
	last := ""
	first := true
	for ctx.Err() == nil {
		h := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
		if last != "" {
			h.Set("Last-Event-ID", last)
		}
		sent := time.Now()
		resp, err := b.get(ctx, path, h)
		if err != nil {
			if ctx.Err() == nil {
				b.fail("connect")
				b.retry(ctx)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			b.fail("status " + strconv.Itoa(resp.StatusCode))
			b.retry(ctx)
			continue
		}
		closeConn := b.open()
		dec := b.decoder(resp.Body, func(at time.Time) {
			if first {
				b.ttfb.add(at.Sub(sent))
				first = false
			}
		})
		_, err = b.decodeAll(dec, sent)
		last = dec.LastEventID()
		resp.Body.Close()
		closeConn()
		if ctx.Err() == nil {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			b.fail("read: " + errKind(err))
			b.retry(ctx)
		}
	}
}

func (b *bench) retry(ctx context.Context) {
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
}

// read reads one segment body; it returns the next segment's URL.
func (b *bench) read(body io.Reader, sent time.Time, firstByte func(time.Time)) (string, error) {
	return b.decodeAll(b.decoder(body, firstByte), sent)
}

func (b *bench) decoder(body io.Reader, firstByte func(time.Time)) *sse.Decoder {
	dec := sse.NewDecoder(&countingReader{r: body, b: b, first: firstByte})
	dec.OnComment = func(string) { b.keepalives.Add(1) }
	return dec
}

// decodeAll decodes until the body ends; it returns the URL of a next
// event. Latency counts only updates published after the request was sent:
// a viewer joining a segment late first receives the updates it missed,
// which are catch-up, not delay.
func (b *bench) decodeAll(dec *sse.Decoder, sent time.Time) (next string, err error) {
	live := sent.Add(b.offset).UnixMilli()
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return next, nil
		}
		if err != nil {
			return next, err
		}
		b.events.Add(1)
		switch ev.Type {
		case "update":
			if ms, ok := updateTime(ev.Data); ok {
				b.updates.Add(1)
				if ms >= live {
					b.latency.add(time.Since(time.UnixMilli(ms)) + b.offset)
				}
			}
		case "next":
			var n struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(ev.Data, &n) == nil {
				next = n.URL
			}
		}
	}
}

// updateTime finds the top-level "time" of an update's data
// ({"key":...,"seq":...,"time":<ms>,"value":...}) without decoding the
// value; keys cannot contain quotes, so the first `,"time":` is it.
func updateTime(data []byte) (int64, bool) {
	i := bytes.Index(data, []byte(`,"time":`))
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(`,"time":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ms, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ms, err == nil
}

// countingReader counts body bytes and reports the first one.
type countingReader struct {
	r     io.Reader
	b     *bench
	first func(time.Time)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if c.first != nil {
			c.first(time.Now())
			c.first = nil
		}
		c.b.bytes.Add(int64(n))
	}
	return n, err
}

func errKind(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, sse.ErrTooLong):
		return "event too long"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
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

// histogram is a lock-free log-bucketed histogram of durations from 10µs
// to about 17 minutes, with buckets 5% wide (quantiles within 5%).
type histogram struct {
	buckets [histBuckets]atomic.Int64
	max     atomic.Int64
}

const (
	histMin     = 10 * time.Microsecond
	histGrowth  = 1.05
	histBuckets = 380
)

func newHistogram() *histogram { return &histogram{} }

func (h *histogram) add(d time.Duration) {
	i := 0
	if d > histMin {
		i = min(int(math.Log(float64(d)/float64(histMin))/math.Log(histGrowth))+1, histBuckets-1)
	}
	h.buckets[i].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// quantileMs returns the upper bound of the bucket holding the q-quantile,
// in milliseconds (0 when empty).
func (h *histogram) quantileMs(q float64) float64 {
	var total int64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= max(rank, 1) {
			upper := float64(histMin) * math.Pow(histGrowth, float64(i))
			return math.Min(upper, float64(h.max.Load())) / float64(time.Millisecond)
		}
	}
	return h.maxMs()
}

func (h *histogram) maxMs() float64 { return float64(h.max.Load()) / float64(time.Millisecond) }
