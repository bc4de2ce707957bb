package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"marquee/wire"
)

// bench is the shared state of one run; every counter is atomic.
type bench struct {
	cfg    config
	client *http.Client

	segLen time.Duration
	offset time.Duration

	desc wire.Descriptor // as describe fetched it

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
		var list wire.FeedList
		if err := getJSON("/v1/feeds", &list); err != nil {
			return err
		}
		if len(list.Feeds) == 0 {
			return errors.New("no feeds listed")
		}
		b.cfg.feed = list.Feeds[0].Feed
	}
	var d wire.Descriptor
	if err := getJSON("/v1/feeds/"+url.PathEscape(b.cfg.feed), &d); err != nil {
		return err
	}
	if d.SegmentLength <= 0 || !strings.Contains(d.URL, "/") {
		return fmt.Errorf("feed %s: descriptor without segment length or URL", b.cfg.feed)
	}
	if b.cfg.mode == wire.ModeParts && (d.Parts < 1 || !strings.Contains(d.PartURL, "{k}") || !strings.Contains(d.UptoURL, "{k}")) {
		return fmt.Errorf("feed %s: the descriptor offers no parts mode", b.cfg.feed)
	}
	b.desc = d
	b.segLen = d.SegmentDuration()
	// The local clock unless it is clearly off (the descriptor may be up to
	// 1s old at an edge).
	if off := time.Until(time.UnixMilli(d.ServerTime)); off < -2*time.Second || off > 2*time.Second {
		b.offset = off + 500*time.Millisecond
	}
	return nil
}

// current returns the segment in progress now.
func (b *bench) current() int64 {
	return time.Now().Add(b.offset).UnixMilli() / b.segLen.Milliseconds()
}

// currentPath returns the path of the segment in progress now.
func (b *bench) currentPath() string { return b.desc.SegmentPath(b.current()) }

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

func (b *bench) retry(ctx context.Context) {
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
}
