package origin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/segmenter"
	"marquee/sse"
)

// The hand-off runs on real sockets (it hijacks net/http connections), so
// these tests use an httptest server and wait for outcomes with deadlines;
// nothing here asserts on speed.

// handOffServer is an origin on a real listener over a hub fed directly.
type handOffServer struct {
	t   testing.TB
	s   *Server
	hub *segmenter.Hub
	ts  *httptest.Server
	reg *prometheus.Registry

	mu  sync.Mutex // guards seq
	seq uint64
}

func newHandOffServer(t testing.TB, cfg Config, scfg segmenter.Config, wrap ...func(net.Listener) net.Listener) *handOffServer {
	t.Helper()
	if !handoffSupported {
		t.Skip("no stream hand-off on this platform")
	}
	reg := prometheus.NewRegistry()
	hub, err := segmenter.New(scfg, segmenter.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.Loaded()
	x := &handOffServer{t: t, hub: hub, reg: reg}
	x.update("AAPL", `{"p":1}`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	x.s = New(cfg, hub, nil, NewMetrics(reg), nil)
	x.ts = httptest.NewUnstartedServer(x.s.Handler())
	for _, w := range wrap {
		x.ts.Listener = w(x.ts.Listener)
	}
	x.ts.Start()
	t.Cleanup(func() {
		x.ts.CloseClientConnections()
		x.ts.Close()
		hub.Abort()
		cancel()
		<-done
		x.waitIdle()
	})
	return x
}

// waitIdle waits until every hand-off goroutine has ended.
func (x *handOffServer) waitIdle() {
	deadline := time.Now().Add(10 * time.Second)
	for x.s.hand.running.Load() > 0 {
		if time.Now().After(deadline) {
			x.t.Errorf("%d hand-off goroutines still running 10s after the hub was aborted", x.s.hand.running.Load())
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (x *handOffServer) update(key, value string) uint64 {
	x.t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq++
	if err := x.hub.Apply("prices", segmenter.Update{Key: key, Value: json.RawMessage(value), Seq: x.seq, Time: time.Now()}); err != nil {
		x.t.Fatalf("apply: %v", err)
	}
	return x.seq
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func handOffConfig() Config {
	c := Defaults()
	c.DrainDelay, c.DrainSpread = 0, 0
	return c
}

func handOffSegmenter() segmenter.Config {
	c := segmenter.Defaults()
	c.SegmentLength = 10 * time.Second
	c.PartLength = time.Second
	c.PartLateness = 0
	c.Keepalive = time.Hour
	return c
}

// viewer is one client of a streaming response, decoding it on its own
// goroutine.
type viewer struct {
	resp   *http.Response
	mu     sync.Mutex
	ids    []uint64
	events []sse.Event
	comm   int
	err    error // how the body ended (io.EOF: the terminating chunk)
	done   chan struct{}
}

func (x *handOffServer) open(path string, header ...string) *viewer {
	x.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, x.ts.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// One transport per viewer: a connection each, as browsers have.
	tr := &http.Transport{DisableCompression: true}
	x.t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		x.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	v := &viewer{resp: resp, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		defer resp.Body.Close()
		dec := sse.NewDecoder(resp.Body)
		dec.OnComment = func(string) { v.mu.Lock(); v.comm++; v.mu.Unlock() }
		for {
			ev, err := dec.Next()
			v.mu.Lock()
			if err != nil {
				v.err = err
				v.mu.Unlock()
				return
			}
			v.events = append(v.events, ev)
			if id, err := strconv.ParseUint(ev.ID, 10, 64); err == nil && ev.Type == "update" {
				v.ids = append(v.ids, id)
			}
			v.mu.Unlock()
		}
	}()
	return v
}

func (v *viewer) updates() []uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]uint64(nil), v.ids...)
}

func (v *viewer) comments() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.comm
}

// ended waits for the body to end and returns how.
func (v *viewer) ended(t *testing.T) error {
	t.Helper()
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		t.Fatal("response still open after 10s")
	}
	return v.err
}

// wantSeqs checks that ids are exactly from..to.
func wantSeqs(t *testing.T, what string, ids []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(ids)) != to-from+1 {
		t.Fatalf("%s: %d updates %v, want %d..%d", what, len(ids), ids, from, to)
	}
	for i, id := range ids {
		if id != from+uint64(i) {
			t.Fatalf("%s: update %d is %d, want %d (%v)", what, i, id, from+uint64(i), ids)
		}
	}
}

// TestHandOffDirect: direct viewers are handed off after their first
// batch (their handler goroutines end) and each receives every update
// once, in order, as valid HTTP/1.1 chunks; a viewer resuming with
// Last-Event-ID continues exactly after it.
func TestHandOffDirect(t *testing.T) {
	x := newHandOffServer(t, handOffConfig(), handOffSegmenter())
	base := runtime.NumGoroutine()
	const n = 60
	var vs []*viewer
	for range n {
		vs = append(vs, x.open("/v1/feeds/prices/events"))
	}
	eventually(t, "all handed off", func() bool {
		return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == n
	})
	for i := 0; i < 200; i++ {
		x.update(fmt.Sprint("K", i%7), fmt.Sprintf(`{"p":%d}`, i))
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for i, v := range vs {
		if !v.resp.Close {
			t.Fatalf("viewer %d: a direct response that is handed off does not say Connection: close", i)
		}
		eventually(t, fmt.Sprint("viewer ", i, " has every update"), func() bool { return len(v.updates()) >= 200 })
		wantSeqs(t, fmt.Sprint("viewer ", i), v.updates(), 2, 201)
	}
	// Server side, a handed-off viewer is no goroutine: the n client
	// readers (and their transports' two each) are most of what remains
	// once the handlers have returned.
	eventually(t, "handlers returned", func() bool { return runtime.NumGoroutine()-base <= 3*n+20 })
	resumed := x.open("/v1/feeds/prices/events", "Last-Event-ID", "150")
	last := x.update("Z", `{"p":0}`)
	eventually(t, "resumed viewer caught up", func() bool { ids := resumed.updates(); return len(ids) > 0 && ids[len(ids)-1] == last })
	wantSeqs(t, "resumed from 150", resumed.updates(), 151, last)
	if got := counter(x.s.m.openStreams.WithLabelValues(modeDirect)); got != n+1 {
		t.Errorf("open direct streams = %v, want %d", got, n+1)
	}
}

// TestHandOffDirectKeepalive: an idle handed-off direct viewer gets a
// keepalive comment after each keepalive interval of silence.
func TestHandOffDirectKeepalive(t *testing.T) {
	scfg := handOffSegmenter()
	scfg.Keepalive = 200 * time.Millisecond
	x := newHandOffServer(t, handOffConfig(), scfg)
	v := x.open("/v1/feeds/prices/events")
	eventually(t, "three keepalives", func() bool { return v.comments() >= 3 })
	x.update("B", `{"p":2}`)
	eventually(t, "the update", func() bool { return len(v.updates()) == 1 })
}

// TestHandOffStream: a stream viewer handed off mid-segment receives the
// segment log byte for byte, ending with the terminating chunk when the
// segment closes; an aborted segment is cut without one.
func TestHandOffStream(t *testing.T) {
	scfg := handOffSegmenter()
	scfg.SegmentLength = 2 * time.Second
	scfg.PartLength = 500 * time.Millisecond
	x := newHandOffServer(t, handOffConfig(), scfg)
	f, _ := x.hub.Feed("prices")
	l := f.Current()
	if l == nil {
		eventually(t, "segment open", func() bool { l = f.Current(); return l != nil })
	}
	path := fmt.Sprintf("/v1/feeds/prices/segments/%d", l.N)
	req, _ := http.NewRequest(http.MethodGet, x.ts.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		body <- b
		errc <- err
	}()
	if !resp.Close {
		t.Error("a live segment response that is handed off does not say Connection: close")
	}
	eventually(t, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeStream)) == 1 })
	for i := range 20 {
		x.update("S", fmt.Sprintf(`{"p":%d}`, i))
	}
	var got []byte
	select {
	case got = <-body:
	case <-time.After(10 * time.Second):
		t.Fatal("segment response did not end")
	}
	if err := <-errc; err != nil {
		t.Fatalf("reading the segment: %v", err)
	}
	if l.State() != segmenter.Closed || string(got) != string(l.Bytes()) {
		t.Fatalf("segment body (%d bytes) differs from the log (%d bytes, %v)", len(got), l.Len(), l.State())
	}
	eventually(t, "counted complete", func() bool {
		return counter(x.s.m.streamClosed.WithLabelValues(modeStream, reasonComplete)) == 1
	})
	// The finished segment is served whole and never handed off: its
	// connection stays open for the next request.
	fin, err := http.Get(x.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, fin.Body)
	fin.Body.Close()
	if fin.Close {
		t.Error("a finished segment's response closes its connection")
	}

	// The next segment, aborted under its viewer: no terminating chunk.
	var next *segmenter.Log
	eventually(t, "next segment", func() bool { next = f.Current(); return next != nil && next.N > l.N })
	v := x.open(fmt.Sprintf("/v1/feeds/prices/segments/%d", next.N))
	eventually(t, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeStream)) == 2 })
	x.hub.Abort()
	if err := v.ended(t); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("aborted segment ended with %v, want io.ErrUnexpectedEOF (no terminating chunk)", err)
	}
	eventually(t, "counted aborted", func() bool {
		return counter(x.s.m.streamClosed.WithLabelValues(modeStream, reasonAborted)) == 1
	})
}

// TestHandOffDrain: Drain ends handed-off responses like the handlers' own:
// direct viewers cleanly, stream viewers of the open segment cut; Drain
// returns once they are closed.
func TestHandOffDrain(t *testing.T) {
	cfg := handOffConfig()
	cfg.DrainBatches = 3
	x := newHandOffServer(t, cfg, handOffSegmenter())
	f, _ := x.hub.Feed("prices")
	var l *segmenter.Log
	eventually(t, "segment open", func() bool { l = f.Current(); return l != nil })
	var direct, streams []*viewer
	for range 5 {
		direct = append(direct, x.open("/v1/feeds/prices/events"))
		streams = append(streams, x.open(fmt.Sprintf("/v1/feeds/prices/segments/%d", l.N)))
	}
	eventually(t, "handed off", func() bool {
		return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == 5 && counter(x.s.m.handedOff.WithLabelValues(modeStream)) == 5
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.s.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	for i, v := range direct {
		if err := v.ended(t); err != io.EOF {
			t.Errorf("direct viewer %d ended with %v, want a clean end", i, err)
		}
	}
	for i, v := range streams {
		if err := v.ended(t); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("stream viewer %d ended with %v, want it cut", i, err)
		}
	}
	// Drain returns once the last stream is unregistered, a moment before
	// its close is counted.
	eventually(t, "counted", func() bool {
		return counter(x.s.m.streamClosed.WithLabelValues(modeDirect, reasonDrain)) == 5 &&
			counter(x.s.m.streamClosed.WithLabelValues(modeStream, reasonDrain)) == 5
	})
	if probs, err := testutil.GatherAndLint(x.reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", err, probs)
	}
}

// TestHandOffClientGone: a viewer that goes away is noticed without a
// write (the watcher sees the hang-up), and counted as gone, not slow.
func TestHandOffClientGone(t *testing.T) {
	x := newHandOffServer(t, handOffConfig(), handOffSegmenter())
	var vs []*viewer
	for range 4 {
		vs = append(vs, x.open("/v1/feeds/prices/events"))
	}
	eventually(t, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == 4 })
	for _, v := range vs[:3] {
		v.resp.Body.Close()
	}
	eventually(t, "three gone", func() bool {
		return counter(x.s.m.streamClosed.WithLabelValues(modeDirect, reasonClientGone)) == 3
	})
	if got := counter(x.s.m.openStreams.WithLabelValues(modeDirect)); got != 1 {
		t.Errorf("open direct streams = %v, want 1", got)
	}
	if got := counter(x.s.m.slowClosed.WithLabelValues(modeDirect)); got != 0 {
		t.Errorf("slow = %v, want 0", got)
	}
	x.update("B", `{"p":2}`)
	eventually(t, "the one left has the update", func() bool { return len(vs[3].updates()) == 1 })
}

// rawViewer is a direct viewer on a plain socket with a small receive
// buffer that reads only when told to.
type rawViewer struct {
	conn net.Conn
	br   *bufio.Reader
}

func (x *handOffServer) rawOpen(t testing.TB, path string, header ...string) *rawViewer {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			setRcvBuf(fd, 4096)
		})
	}}
	conn, err := d.Dial("tcp", x.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: origin.test\r\n%s\r\n", path, strings.Join(append(header, ""), "\r\n"))
	return &rawViewer{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
}

// readAll reads the chunked body of the response until it ends; it
// returns the update ids and whether the terminating chunk came.
func (r *rawViewer) readAll(t *testing.T) (ids []uint64, clean bool) {
	t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := sse.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			return ids, err == io.EOF
		}
		if id, err := strconv.ParseUint(ev.ID, 10, 64); err == nil && ev.Type == "update" {
			ids = append(ids, id)
		}
	}
}

// TestHandOffSlowReader: viewers that stop reading never hold up the
// others (their writer does not wait for their sockets); one that reads
// again in time catches up through the slow path and rejoins; one that
// never does is closed when its write deadline passes; one that fell out
// of the history meanwhile is closed as slow, cleanly (it resumes with
// Last-Event-ID and gets a snapshot).
func TestHandOffSlowReader(t *testing.T) {
	cfg := handOffConfig()
	cfg.WriteTimeout = 5 * time.Second
	scfg := handOffSegmenter()
	scfg.History = 64
	x := newHandOffServer(t, cfg, scfg, withSendBuffer(16<<10))
	big := `{"v":"` + strings.Repeat("x", 8<<10) + `"}`
	const path = "/v1/feeds/prices/events"

	paused := x.rawOpen(t, path)
	stalled := x.rawOpen(t, path)
	fast := x.open(path)
	eventually(t, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == 3 })
	for i := range 40 {
		x.update(fmt.Sprint("K", i), big) // 2..41: 330 KiB, far more than a socket holds
	}
	eventually(t, "the fast viewer has all 40", func() bool { return len(fast.updates()) == 40 })

	type result struct {
		ids   []uint64
		clean bool
	}
	pausedDone := make(chan result, 1)
	go func() { ids, clean := paused.readAll(t); pausedDone <- result{ids, clean} }()

	eventually(t, "the stalled viewer closed at its write deadline, counted slow", func() bool {
		return counter(x.s.m.streamClosed.WithLabelValues(modeDirect, reasonWriteError)) == 1 &&
			counter(x.s.m.slowClosed.WithLabelValues(modeDirect)) == 1
	})
	stalled.conn.Close()

	// A viewer stalls while more than the history is published, then
	// reads. (It resumes: a snapshot of the 40 big keys would not fit its
	// socket, and a response is handed off only once its first batch is out.)
	late := x.rawOpen(t, path, "Last-Event-ID: 41")
	eventually(t, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == 4 })
	for i := range 100 {
		x.update(fmt.Sprint("L", i), big) // 42..141
		time.Sleep(10 * time.Millisecond) // the readers keep up (less than 64 behind)
	}
	ids, clean := late.readAll(t)
	if !clean {
		t.Error("viewer out of the history: no terminating chunk")
	}
	if len(ids) == 0 || ids[len(ids)-1] == 141 {
		t.Errorf("viewer out of the history got %d updates up to %v, want it cut short", len(ids), ids)
	} else {
		wantSeqs(t, "viewer out of the history", ids, 42, ids[len(ids)-1])
	}
	eventually(t, "closed as slow", func() bool { return counter(x.s.m.streamClosed.WithLabelValues(modeDirect, reasonSlow)) == 1 })
	eventually(t, "the fast viewer has all 140", func() bool { return len(fast.updates()) == 140 })
	wantSeqs(t, "fast viewer", fast.updates(), 2, 141)

	x.hub.Abort() // ends the paused viewer's response, cleanly
	r := <-pausedDone
	wantSeqs(t, "paused viewer", r.ids, 2, 141)
	if !r.clean {
		t.Error("paused viewer: no terminating chunk at shutdown")
	}
}

// TestHandOffOff: with HandOff off responses stay in their handlers.
func TestHandOffOff(t *testing.T) {
	cfg := handOffConfig()
	cfg.HandOff = false
	x := newHandOffServer(t, cfg, handOffSegmenter())
	v := x.open("/v1/feeds/prices/events")
	x.update("B", `{"p":2}`)
	eventually(t, "update", func() bool { return len(v.updates()) == 1 })
	if got := counter(x.s.m.handedOff.WithLabelValues(modeDirect)); got != 0 {
		t.Errorf("handed off %v with HandOff off", got)
	}
	if v.resp.Close {
		t.Error("with HandOff off a direct response closes its connection")
	}
}

// withSendBuffer makes the server's sockets small, so that a viewer that
// does not read fills its socket at once.
func withSendBuffer(n int) func(net.Listener) net.Listener {
	return func(l net.Listener) net.Listener { return sndbufListener{l, n} }
}

type sndbufListener struct {
	net.Listener
	n int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.n)
	}
	return c, err
}

// TestHandOffNotOverHTTP2: an HTTP/2 response (here over TLS, the way
// browsers speak it) cannot be hijacked; it stays in its handler and
// streams as before.
func TestHandOffNotOverHTTP2(t *testing.T) {
	if !handoffSupported {
		t.Skip("no stream hand-off on this platform")
	}
	reg := prometheus.NewRegistry()
	hub, err := segmenter.New(handOffSegmenter(), segmenter.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.Loaded()
	hub.Apply("prices", segmenter.Update{Key: "AAPL", Value: json.RawMessage(`{"p":1}`), Seq: 1, Time: time.Now()})
	s := New(handOffConfig(), hub, nil, NewMetrics(reg), nil)
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer func() {
		ts.CloseClientConnections()
		ts.Close()
		hub.Abort()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/feeds/prices/events", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", resp.Proto)
	}
	hub.Apply("prices", segmenter.Update{Key: "B", Value: json.RawMessage(`{"p":2}`), Seq: 2, Time: time.Now()})
	dec := sse.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "update" && ev.ID == "2" {
			break
		}
	}
	if got := counter(s.m.handedOff.WithLabelValues(modeDirect)); got != 0 {
		t.Errorf("handed off %v HTTP/2 responses", got)
	}
}
