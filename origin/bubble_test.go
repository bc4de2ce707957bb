package origin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/segmenter"
)

// A harness for the time-driven handlers, run inside a testing/synctest
// bubble. Real sockets never count as durably blocked in a bubble, so
// requests are served in-process: each runs the Server's handler in its own
// goroutine of the bubble against an exchange, an in-memory ResponseWriter
// (with Flush) that records the status, the header and every write with
// the bubble's fake time. The hub runs with the system clock, which is fake
// inside the bubble, driven by its own Run.
//
// Time in a bubble starts at 2000-01-01 00:00:00 UTC, a segment boundary
// for any whole-second segment length, so a test knows every boundary.

// bubble is an origin over a running hub, inside a synctest bubble.
type bubble struct {
	t   *testing.T
	s   *Server
	hub *segmenter.Hub
	reg *prometheus.Registry
	t0  time.Time // the bubble's start: the start of segment n0
	n0  int64

	mu  sync.Mutex // guards xs
	xs  []*exchange
	seq uint64 // last sequence applied by update
}

// testSegmenter is the segmenter configuration of the bubble tests: 10 s
// segments of ten 1 s parts, a keepalive after 1 s of silence, no lateness
// allowance (parts close at their end, so the times below are the grid's;
// TestPartLateness holds a part for the allowance).
func testSegmenter() segmenter.Config {
	c := segmenter.Defaults()
	c.SegmentLength = 10 * time.Second
	c.PartLength = time.Second
	c.PartLateness = 0
	c.Keepalive = time.Second
	return c
}

// newBubble starts a loaded hub with feed "prices" (one key, sequence 1)
// and an origin over it. Call it inside synctest.Test; its cleanup ends
// every exchange and the hub.
func newBubble(t *testing.T, cfg Config, scfg segmenter.Config) *bubble {
	return startBubble(t, cfg, scfg, true)
}

// newLoadingBubble is newBubble with a hub still loading: the feed exists
// but no segment opens.
func newLoadingBubble(t *testing.T, cfg Config, scfg segmenter.Config) *bubble {
	return startBubble(t, cfg, scfg, false)
}

func startBubble(t *testing.T, cfg Config, scfg segmenter.Config, loaded bool) *bubble {
	t.Helper()
	hub, err := segmenter.New(scfg, segmenter.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b := &bubble{t: t, hub: hub, reg: reg, t0: time.Now()}
	b.n0 = hub.Grid().Index(b.t0)
	if !hub.Grid().Start(b.n0).Equal(b.t0) {
		t.Fatalf("bubble starts at %v, not at a segment boundary", b.t0)
	}
	// The stored state predates the bubble, so segment n0 opens complete
	// at t0, as on an origin that was running before (segmenter.Log.FirstPart).
	b.seq++
	if err := hub.Apply("prices", segmenter.Update{Key: "AAPL", Value: json.RawMessage(`{"p":1}`), Seq: b.seq, Time: b.t0.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if loaded {
		hub.Loaded()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	b.s = New(cfg, hub, nil, NewMetrics(reg), nil)
	t.Cleanup(func() {
		b.mu.Lock()
		xs := b.xs
		b.mu.Unlock()
		for _, x := range xs {
			x.cancel()
		}
		hub.Abort()
		cancel()
		<-done
		for _, x := range xs {
			<-x.done
		}
	})
	return b
}

// at returns the time d after the bubble's start.
func (b *bubble) at(d time.Duration) time.Time { return b.t0.Add(d) }

// sleepUntil advances the bubble's clock to t0+d and lets every goroutine
// (the hub's ticks, handlers) run until it blocks.
func (b *bubble) sleepUntil(d time.Duration) {
	b.t.Helper()
	left := time.Until(b.at(d))
	if left < 0 {
		b.t.Fatalf("sleepUntil(%v): already at %v", d, time.Since(b.t0))
	}
	time.Sleep(left)
	synctest.Wait()
}

// update applies an update to "prices" with the next sequence number.
func (b *bubble) update(key, value string) uint64 {
	b.t.Helper()
	b.seq++
	if err := b.hub.Apply("prices", segmenter.Update{Key: key, Value: json.RawMessage(value), Seq: b.seq, Time: time.Now()}); err != nil {
		b.t.Fatalf("apply: %v", err)
	}
	return b.seq
}

// segPath returns the path of segment n0+i of "prices".
func (b *bubble) segPath(i int64, rest ...string) string {
	return fmt.Sprintf("/v1/feeds/prices/segments/%d", b.n0+i) + strings.Join(rest, "")
}

// do starts a request with the given header (name, value pairs) and
// returns at once; its handler runs in a goroutine of the bubble.
func (b *bubble) do(method, path string, header ...string) *exchange {
	return b.serve(nil, method, path, header...)
}

// serve starts a request; stalled is the exchange's stalled channel.
func (b *bubble) serve(stalled chan struct{}, method, path string, header ...string) *exchange {
	req := httptest.NewRequest(method, "http://origin.test"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.serveRequest(stalled, req)
}

// serveRequest starts req (given a context of its own that the exchange
// cancels); stalled is the exchange's stalled channel.
func (b *bubble) serveRequest(stalled chan struct{}, req *http.Request) *exchange {
	ctx, cancel := context.WithCancel(context.Background())
	req = req.WithContext(ctx)
	x := &exchange{cancel: cancel, done: make(chan struct{}), header: make(http.Header), stalled: stalled}
	b.mu.Lock()
	b.xs = append(b.xs, x)
	b.mu.Unlock()
	h := b.s.Handler()
	go func() {
		defer close(x.done)
		defer func() {
			p := recover()
			x.mu.Lock()
			defer x.mu.Unlock()
			x.endedAt = time.Now()
			switch {
			case p == http.ErrAbortHandler:
				x.aborted = true
			case p != nil:
				x.panicked = p
			}
		}()
		h.ServeHTTP(x, req)
	}()
	return x
}

// stall starts a GET whose client stops reading: every write blocks until
// the returned function is called, or until its write deadline.
func (b *bubble) stall(path string, header ...string) (*exchange, func()) {
	stalled := make(chan struct{})
	x := b.serve(stalled, http.MethodGet, path, header...)
	synctest.Wait()
	return x, sync.OnceFunc(func() { close(stalled) })
}

// get starts a GET and lets it run until it blocks or ends.
func (b *bubble) get(path string, header ...string) *exchange {
	x := b.do(http.MethodGet, path, header...)
	synctest.Wait()
	return x
}

// counter returns the value of a counter or gauge.
func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// exchange is one request served in-process: an http.ResponseWriter and
// http.Flusher that records what the handler sent and when.
type exchange struct {
	cancel context.CancelFunc // the client goes away
	done   chan struct{}      // closed when the handler has returned

	header http.Header // the handler's header map (handler goroutine only)

	// stalled, when not nil, makes every Write block until it is closed
	// or the write deadline passes (a viewer that stopped reading).
	stalled chan struct{}

	mu       sync.Mutex // guards the fields below
	deadline time.Time  // write deadline (http.ResponseController)
	code     int
	sent     http.Header // header as of WriteHeader
	headerAt time.Time
	writes   []write
	batching bool // the last write is not flushed yet: the next Write joins it
	flushes  int
	endedAt  time.Time
	aborted  bool // the handler panicked with http.ErrAbortHandler
	panicked any  // any other panic
}

// write is one batch: the Write calls between two flushes (handlers
// batch, then flush once), at the time of the first.
type write struct {
	at   time.Time
	data string
}

var _ http.Flusher = (*exchange)(nil)

func (x *exchange) Header() http.Header { return x.header }

func (x *exchange) WriteHeader(code int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.code != 0 {
		return
	}
	x.code, x.headerAt, x.sent = code, time.Now(), x.header.Clone()
}

func (x *exchange) Write(p []byte) (int, error) {
	x.WriteHeader(http.StatusOK)
	if x.stalled != nil {
		x.mu.Lock()
		deadline := x.deadline
		x.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-x.stalled:
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case len(p) == 0:
	case x.batching:
		x.writes[len(x.writes)-1].data += string(p)
	default:
		x.writes = append(x.writes, write{time.Now(), string(p)})
		x.batching = true
	}
	return len(p), nil
}

// SetWriteDeadline is what http.ResponseController calls.
func (x *exchange) SetWriteDeadline(t time.Time) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.deadline = t
	return nil
}

func (x *exchange) Flush() {
	x.WriteHeader(http.StatusOK)
	x.mu.Lock()
	x.flushes++
	x.batching = false
	x.mu.Unlock()
}

// status returns the status code (0 while the headers are held) and the
// time it was sent.
func (x *exchange) status() (int, time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.code, x.headerAt
}

// head returns a header field as sent.
func (x *exchange) head(name string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sent.Get(name)
}

// headers returns the header as sent.
func (x *exchange) headers() http.Header {
	x.mu.Lock()
	defer x.mu.Unlock()
	return maps.Clone(x.sent)
}

// body returns everything written so far.
func (x *exchange) body() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var sb strings.Builder
	for _, w := range x.writes {
		sb.WriteString(w.data)
	}
	return sb.String()
}

// log returns the writes so far.
func (x *exchange) log() []write {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]write(nil), x.writes...)
}

// ended reports whether the handler has returned, and when.
func (x *exchange) ended() (bool, time.Time) {
	select {
	case <-x.done:
	default:
		return false, time.Time{}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return true, x.endedAt
}

// outcome returns how the handler ended: aborted (http.ErrAbortHandler)
// or with another panic.
func (x *exchange) outcome() (aborted bool, panicked any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.aborted, x.panicked
}

// want checks that the exchange has answered code at time at, and that the
// handler did not panic other than with http.ErrAbortHandler.
func (b *bubble) want(x *exchange, what string, code int, at time.Duration) {
	b.t.Helper()
	got, when := x.status()
	if got != code {
		b.t.Errorf("%s: status %d, want %d", what, got, code)
		return
	}
	if !when.Equal(b.at(at)) {
		b.t.Errorf("%s: answered at t0+%v, want t0+%v", what, when.Sub(b.t0), at)
	}
	if _, p := x.outcome(); p != nil {
		b.t.Errorf("%s: handler panicked: %v", what, p)
	}
}

// wantHeld checks that the exchange has not answered yet.
func (b *bubble) wantHeld(x *exchange, what string) {
	b.t.Helper()
	if code, when := x.status(); code != 0 {
		b.t.Errorf("%s: answered %d at t0+%v, want it held", what, code, when.Sub(b.t0))
	}
}

// wantEnded checks that the handler has returned at t0+at.
func (b *bubble) wantEnded(x *exchange, what string, at time.Duration) {
	b.t.Helper()
	ended, when := x.ended()
	switch {
	case !ended:
		b.t.Errorf("%s: still running, want it ended at t0+%v", what, at)
	case !when.Equal(b.at(at)):
		b.t.Errorf("%s: ended at t0+%v, want t0+%v", what, when.Sub(b.t0), at)
	}
}

// TestBubbleHarness: the harness itself, on the simplest route.
func TestBubbleHarness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(1500 * time.Millisecond)
		x := b.get("/healthz")
		b.want(x, "healthz", http.StatusOK, 1500*time.Millisecond)
		b.wantEnded(x, "healthz", 1500*time.Millisecond)
		if got := x.body(); got != `{"status":"ok"}`+"\n" {
			t.Errorf("body %q", got)
		}
		if got := x.head("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q", got)
		}
	})
}
