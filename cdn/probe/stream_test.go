package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/cdn"
	"marquee/sse"
	"marquee/wire"
)

// fakeEdge serves marquee's stream mode the way three kinds of edge would:
// "stream" shares one response per segment and streams it (Varnish,
// Fastly), "buffer" shares one but sends it only when complete, and
// "origin" gives every request a response of its own.
type fakeEdge struct {
	mode string
	D    time.Duration

	mu   sync.Mutex // guards the fields below
	segs map[int64]*fakeSeg
	nreq int
}

// fakeSeg is one segment's bytes as the origin writes them.
type fakeSeg struct {
	mu   sync.Mutex // guards the fields below
	buf  []byte
	done bool
	wake chan struct{}
}

func (s *fakeSeg) append(b []byte, done bool) {
	s.mu.Lock()
	s.buf = append(s.buf, b...)
	s.done = done
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

func (s *fakeSeg) since(off int) ([]byte, bool, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf[off:], s.done, s.wake
}

func (e *fakeEdge) index(t time.Time) int64 { return t.UnixMilli() / e.D.Milliseconds() }
func (e *fakeEdge) start(n int64) time.Time { return time.UnixMilli(n * e.D.Milliseconds()) }

// segment returns segment n, starting its writer the first time.
func (e *fakeEdge) segment(ctx context.Context, n int64) *fakeSeg {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.segs[n]; ok {
		return s
	}
	s := &fakeSeg{wake: make(chan struct{})}
	e.segs[n] = s
	go e.write(ctx, n, s)
	return s
}

// write produces segment n: snapshot at its start, an update every 50ms, a
// keepalive when idle, the next event at its end.
func (e *fakeEdge) write(ctx context.Context, n int64, s *fakeSeg) {
	start, end := e.start(n), e.start(n+1)
	sleepUntil := func(t time.Time) bool {
		select {
		case <-time.After(time.Until(t)):
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !sleepUntil(start) {
		return
	}
	seq := uint64(n * 1000)
	b := sse.AppendRetry(nil, 3000)
	b, _ = sse.AppendEvent(b, sse.Event{ID: strconv.FormatUint(seq, 10), Type: wire.EventSnapshot,
		Data: mustJSON(wire.Snapshot{Feed: "f", Segment: n, Seq: seq, Time: start.UnixMilli(), Entries: map[string]json.RawMessage{}})})
	s.append(b, false)
	for t := start.Add(50 * time.Millisecond); t.Before(end); t = t.Add(50 * time.Millisecond) {
		if !sleepUntil(t) {
			return
		}
		seq++
		b, _ := sse.AppendEvent(nil, sse.Event{ID: strconv.FormatUint(seq, 10), Type: wire.EventUpdate,
			Data: mustJSON(wire.Update{Key: "k", Seq: seq, Time: time.Now().UnixMilli(), Value: json.RawMessage(`{}`)})})
		s.append(b, false)
	}
	if !sleepUntil(end) {
		return
	}
	b, _ = sse.AppendEvent(nil, sse.Event{Type: wire.EventNext, Data: mustJSON(wire.Next{Segment: n + 1, URL: fmt.Sprintf("/v1/feeds/f/segments/%d", n+1)})})
	s.append(b, true)
}

func (e *fakeEdge) handler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/feeds", func(w http.ResponseWriter, r *http.Request) {
		w.Write(mustJSON(wire.FeedList{Feeds: []wire.FeedRef{{Feed: "f", URL: "/v1/feeds/f"}}}))
	})
	mux.HandleFunc("GET /v1/feeds/f", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		n := e.index(now)
		// A descriptor without parts mode.
		w.Write(mustJSON(wire.Descriptor{Feed: "f", SegmentLength: e.D.Seconds(), Keepalive: 1, Segment: n, URL: fmt.Sprintf("/v1/feeds/f/segments/%d", n),
			SegmentStart: e.start(n).UnixMilli(), SegmentEnd: e.start(n + 1).UnixMilli(), ServerTime: now.UnixMilli()}))
	})
	mux.HandleFunc("GET /v1/feeds/f/segments/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if cur := e.index(time.Now()); n < cur-1 || n > cur+1 {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		s := e.segment(ctx, n)
		e.mu.Lock()
		e.nreq++
		id := "seg-" + r.PathValue("n")
		if e.mode == "origin" {
			id += "-req-" + strconv.Itoa(e.nreq)
		}
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set(cdn.HeaderResponseID, id)
		w.Header().Set("Cache-Control", "public, max-age=0, s-maxage=10")
		if e.mode == "buffer" {
			for {
				_, done, wake := s.since(0)
				if done {
					break
				}
				select {
				case <-wake:
				case <-r.Context().Done():
					return
				}
			}
		}
		rc := http.NewResponseController(w)
		off := 0
		for {
			b, done, wake := s.since(off)
			w.Write(b)
			rc.Flush()
			off += len(b)
			if done {
				return
			}
			select {
			case <-wake:
			case <-r.Context().Done():
				return
			}
		}
	})
	return mux
}

// TestStreamFakeEdges runs the stream-mode probe against four fake edges at once: only
// the streaming, collapsing one passes, and each failure names its cause.
// (The probes run in goroutines, not parallel subtests, which -parallel
// would serialise on a small machine.)
func TestStreamFakeEdges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := []struct {
		mode    string
		pass    bool
		verdict string
	}{
		{"stream", true, "VERDICT: PASS stream mode collapses and streams (20 viewers, 1 origin response per segment)"},
		{"buffer", false, "VERDICT: FAIL buffers:"},
		{"origin", false, "VERDICT: FAIL no collapse: 20 viewers saw 20 distinct origin responses"},
		// An edge that strips Marquee-Response-Id cannot be judged.
		{"noid", false, "VERDICT: FAIL cannot tell collapsing:"},
	}
	results := make([]*StreamResult, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		e := &fakeEdge{mode: tc.mode, D: 2 * time.Second, segs: map[int64]*fakeSeg{}}
		h := e.handler(ctx)
		if tc.mode == "noid" {
			e.mode = "stream"
			h0 := h
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h0.ServeHTTP(stripID{w}, r) })
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		wg.Go(func() {
			results[i], errs[i] = Stream(ctx, Config{Base: srv.URL, Viewers: 20, Stagger: 500 * time.Millisecond, Follow: 1, Noise: true})
		})
	}
	wg.Wait()
	for i, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			res, err := results[i], errs[i]
			if err != nil {
				t.Fatal(err)
			}
			var report strings.Builder
			res.WriteReport(&report)
			t.Logf("%s edge:\n%s", tc.mode, report.String())
			if res.Pass != tc.pass || !strings.HasPrefix(res.Verdict, tc.verdict) {
				t.Errorf("pass %v verdict %q; want %v %q", res.Pass, res.Verdict, tc.pass, tc.verdict)
			}
			if tc.mode == "noid" && !strings.Contains(res.Verdict, "carry no Marquee-Response-Id header") {
				t.Errorf("verdict %q does not name the missing header", res.Verdict)
			}
			if !strings.HasSuffix(report.String(), res.Verdict+"\n") {
				t.Errorf("report does not end with the verdict")
			}
			if res.Feed.Feed != "f" {
				t.Errorf("feed %q, want the first listed, f", res.Feed.Feed)
			}
			for _, st := range res.Segments {
				if !st.Identical || st.Complete != st.Viewers {
					t.Errorf("segment %d: %d viewers, %d complete, identical %v", st.Segment, st.Viewers, st.Complete, st.Identical)
				}
			}
			if len(res.Handover) == 0 {
				t.Errorf("no hand-over measured")
			}
		})
	}
}

type stripID struct{ http.ResponseWriter }

func (s stripID) WriteHeader(code int) {
	s.Header().Del(cdn.HeaderResponseID)
	s.ResponseWriter.WriteHeader(code)
}

func (s stripID) Write(b []byte) (int, error) {
	s.Header().Del(cdn.HeaderResponseID)
	return s.ResponseWriter.Write(b)
}

func (s stripID) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestJoinBy: with JoinBy set the join window ends there, however late
// the probe starts, and the last segment followed is the one in progress
// at JoinBy plus Follow; without it the window is Stagger from the start.
func TestJoinBy(t *testing.T) {
	d := wire.Descriptor{SegmentLength: 2}
	now := time.Now()
	// Just before the end of a segment: a start-up delay of Stagger's
	// margin would have moved the last joins into the next one.
	boundary := now.Truncate(2 * time.Second).Add(4 * time.Second)
	joinBy := boundary.Add(-300 * time.Millisecond)
	p := &prober{cfg: Config{JoinBy: joinBy, Stagger: time.Hour, Follow: 1}, desc: d}
	start := p.begin()
	if got := p.cfg.Stagger; got > joinBy.Sub(start) || got <= 0 {
		t.Errorf("stagger %s, want the time until JoinBy (%s)", got, joinBy.Sub(start))
	}
	if want := p.index(joinBy) + 1; p.last != want || p.first != p.index(start) {
		t.Errorf("segments %d..%d, want %d..%d", p.first, p.last, p.index(start), want)
	}
	q := &prober{cfg: Config{Stagger: 10 * time.Second}, desc: d}
	start = q.begin()
	if q.cfg.Stagger != 10*time.Second || q.last != q.index(start.Add(10*time.Second-time.Millisecond)) {
		t.Errorf("without JoinBy: stagger %s, last %d", q.cfg.Stagger, q.last)
	}
	// A JoinBy already past still gives a (tiny) window.
	r := &prober{cfg: Config{JoinBy: now.Add(-time.Second)}, desc: d}
	r.begin()
	if r.cfg.Stagger <= 0 {
		t.Errorf("JoinBy in the past: stagger %s", r.cfg.Stagger)
	}
}
