package origin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"marquee/cdn"
	"marquee/segmenter"
)

// newTestServer runs an origin over a hub fed directly (no NATS: package
// origin never talks to NATS), with 10 s segments.
func newTestServer(t *testing.T, cfg Config) (*Server, *segmenter.Hub, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	scfg := segmenter.Defaults()
	scfg.SegmentLength = 10 * time.Second
	scfg.Keepalive = time.Second
	reg := prometheus.NewRegistry()
	hub, err := segmenter.New(scfg, segmenter.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.Loaded()
	hub.Apply("prices", segmenter.Update{Key: "AAPL", Value: json.RawMessage(`{"p":1}`), Seq: 1, Time: time.Now()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	s := New(cfg, hub, nil, NewMetrics(reg), nil)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		hub.Abort()
		cancel()
		<-done
	})
	return s, hub, ts, reg
}

func TestParseIndex(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"898113600", 898113600, true},
		{"999999999999999", 999999999999999, true},
		{"", 0, false},
		{"07", 0, false},
		{"00", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1e3", 0, false},
		{" 1", 0, false},
		{"1000000000000000", 0, false}, // 16 digits
		{"１", 0, false},                // fullwidth digit
	}
	for _, tt := range tests {
		got, ok := parseIndex(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseIndex(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{"0", "12", "012", "-5", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseIndex(s)
		if ok && fmt.Sprint(n) != s {
			t.Fatalf("parseIndex(%q) accepted a non-canonical spelling (%d)", s, n)
		}
	})
}

// TestMuxFromRouteTable: the mux is built from cdn.PublicRoutes, so a
// route in the table without a handler, a handler without a route, and a
// route listed twice are errors at construction, and New panics on them.
func TestMuxFromRouteTable(t *testing.T) {
	hub, err := segmenter.New(segmenter.Defaults(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Defaults(), hub, nil, NewMetrics(prometheus.NewRegistry()), nil)
	if _, err := s.newMux(cdn.PublicRoutes, s.handlers()); err != nil {
		t.Fatalf("the route table and the handlers disagree: %v", err)
	}
	noHandler := append(slices.Clone(cdn.PublicRoutes), cdn.Route{Pattern: "/v1/new", Edge: cdn.EdgeShort})
	orphan := s.handlers()
	orphan["/v1/orphan"] = s.handleHealth
	twice := append(slices.Clone(cdn.PublicRoutes), cdn.PublicRoutes[0])
	for _, tc := range []struct {
		name     string
		routes   []cdn.Route
		handlers map[string]http.HandlerFunc
		want     string
	}{
		{"route without handler", noHandler, s.handlers(), "/v1/new has no handler"},
		{"handler without route", cdn.PublicRoutes, orphan, "without a route in the table: /v1/orphan"},
		{"route listed twice", twice, s.handlers(), "listed twice"},
	} {
		_, err := s.newMux(tc.routes, tc.handlers)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}

	saved := cdn.PublicRoutes
	defer func() { cdn.PublicRoutes = saved }()
	cdn.PublicRoutes = noHandler
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "/v1/new has no handler") {
			t.Errorf("New with a route without handler: panic %v", p)
		}
	}()
	New(Defaults(), hub, nil, NewMetrics(prometheus.NewRegistry()), nil)
}

// TestRoutes: every route of the table is served under its own pattern
// (the route label of the request metric), and other methods and paths
// are answered as before: OPTIONS preflight under /v1/, 405 with Allow,
// a JSON 404 no-store.
func TestRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := newBubble(t, Defaults(), testSegmenter())
		// The tokened routes on an origin where the feed is protected.
		prot := newBubble(t, protectedConfig("prices"), testSegmenter())
		pub.sleepUntil(1500 * time.Millisecond) // part 0 is finished
		tok := prot.mint("prices")
		sample := strings.NewReplacer("{$}", "", "{file}", "dashboard.css", "{feed}", "prices", "{n}", fmt.Sprint(pub.n0), "{k}", "0", "{token}", tok)
		for _, rt := range cdn.PublicRoutes {
			b := pub
			if strings.Contains(rt.Pattern, "{token}") {
				b = prot
			}
			path := sample.Replace(rt.Pattern)
			x := b.do(http.MethodHead, path)
			synctest.Wait()
			x.cancel()
			<-x.done
			if code, _ := x.status(); code != http.StatusOK {
				t.Errorf("HEAD %s: %d", path, code)
			}
			if got := counter(b.s.m.requests.WithLabelValues("GET "+rt.Pattern, "2xx")); got != 1 {
				t.Errorf("HEAD %s: requests{route=%q} = %v, want 1", path, "GET "+rt.Pattern, got)
			}
			if rt.Stream != (x.head("Content-Type") == "text/event-stream") {
				t.Errorf("HEAD %s: Content-Type %q, route table says stream %v", path, x.head("Content-Type"), rt.Stream)
			}
		}

		b := pub
		pre := b.do(http.MethodOptions, "/v1/feeds/prices/events", "Access-Control-Request-Headers", "last-event-id")
		synctest.Wait()
		if code, _ := pre.status(); code != http.StatusNoContent || !strings.Contains(pre.head("Access-Control-Allow-Headers"), "Last-Event-ID") {
			t.Errorf("OPTIONS: %d %v", code, pre.headers())
		}
		post := b.do(http.MethodPost, "/v1/feeds")
		synctest.Wait()
		if code, _ := post.status(); code != http.StatusMethodNotAllowed || post.head("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("POST: %d Allow %q", code, post.head("Allow"))
		}
		for _, path := range []string{"/v1/nope", "/v1/feeds/prices/segments/1/parts", "/index.html"} {
			x := b.get(path)
			var e struct{ Code int }
			if code, _ := x.status(); code != http.StatusNotFound || x.head("Cache-Control") != "no-store" || json.Unmarshal([]byte(x.body()), &e) != nil || e.Code != 404 {
				t.Errorf("GET %s: %d %q %q, want a JSON 404 no-store", path, code, x.head("Cache-Control"), x.body())
			}
		}
		if got := counter(b.s.m.requests.WithLabelValues("unmatched", "4xx")); got != 4 {
			t.Errorf("unmatched 4xx = %v, want 4 (POST and three 404s)", got)
		}
	})
}

// TestStreamsAreNotCompressed: a client asking for gzip still gets the
// identity body, and HEAD of a segment answers headers only.
func TestStreamsAreNotCompressed(t *testing.T) {
	_, hub, ts, _ := newTestServer(t, Defaults())
	f, _ := hub.Feed("prices")
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/feeds/prices/segments/%d", ts.URL, f.Current().N), nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	io.ReadFull(resp.Body, buf)
	resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" || string(buf) != "retry: 3000\n" {
		t.Errorf("Content-Encoding %q, body starts %q", ce, buf)
	}
	req.Method = "HEAD"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestPreflight(t *testing.T) {
	_, _, ts, _ := newTestServer(t, Defaults())
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/v1/feeds/prices/events", nil)
	req.Header.Set("Origin", "https://example.org")
	req.Header.Set("Access-Control-Request-Headers", "last-event-id")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// TestPartsBeforeOpenRefused: an origin that opened a segment's log in the
// middle of the segment refuses the parts it never recorded (no-store),
// instead of serving them as empty immutable responses.
func TestPartsBeforeOpenRefused(t *testing.T) {
	scfg := segmenter.Defaults()
	scfg.SegmentLength = 10 * time.Second
	clk := fixedClock{time.Unix(100_000_004, 500_000_000)} // part 4 of segment 10,000,000
	reg := prometheus.NewRegistry()
	hub, err := segmenter.New(scfg, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.Loaded()
	hub.Apply("prices", segmenter.Update{Key: "AAPL", Value: json.RawMessage(`{"p":1}`), Seq: 1, Time: clk.t})
	ts := httptest.NewServer(New(Defaults(), hub, nil, NewMetrics(reg), nil).Handler())
	defer ts.Close()
	for _, p := range []string{"parts/0", "parts/3", "upto/3"} {
		resp, err := http.Get(ts.URL + "/v1/feeds/prices/segments/10000000/" + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %q, want 410 no-store", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
}
