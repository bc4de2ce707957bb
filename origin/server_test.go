package origin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

func TestMaxStreams(t *testing.T) {
	cfg := Defaults()
	cfg.MaxStreams = 1
	_, hub, ts, _ := newTestServer(t, cfg)
	f, _ := hub.Feed("prices")
	url := fmt.Sprintf("%s/v1/feeds/prices/segments/%d", ts.URL, f.Current().N)
	first, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	second, err := http.Get(ts.URL + "/v1/feeds/prices/events")
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("second stream: %d %q", second.StatusCode, second.Header.Get("Cache-Control"))
	}
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

// TestDrainSpreadsStreams: readiness goes 503 first, then every stream
// ends; a stream of an open segment is aborted, not ended cleanly.
func TestDrainSpreadsStreams(t *testing.T) {
	cfg := Defaults()
	cfg.DrainDelay = 50 * time.Millisecond
	cfg.DrainSpread = 200 * time.Millisecond
	cfg.DrainBatches = 4
	s, hub, ts, reg := newTestServer(t, cfg)
	f, _ := hub.Feed("prices")
	if left := time.Until(f.Current().End); left < 3*time.Second {
		time.Sleep(left + 50*time.Millisecond) // keep the boundary out of the test
	}
	waitFor(t, func() bool { return time.Until(f.Current().End) > 3*time.Second })
	url := fmt.Sprintf("%s/v1/feeds/prices/segments/%d", ts.URL, f.Current().N)
	results := make(chan error, 8)
	for range 8 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- err
		}()
	}
	waitFor(t, func() bool { return testutil.ToFloat64(s.m.openStreams.WithLabelValues(modeStream)) == 8 })
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	waitFor(t, func() bool {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	for range 8 {
		if err := <-results; err == nil {
			t.Error("a stream of an open segment ended cleanly at drain")
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("new stream while draining: %d", resp.StatusCode)
	}
	if got := testutil.ToFloat64(s.m.streamClosed.WithLabelValues(modeStream, reasonDrain)); got != 8 {
		t.Errorf("closed by drain = %v, want 8", got)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", err, probs)
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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10s")
		}
		time.Sleep(10 * time.Millisecond)
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
