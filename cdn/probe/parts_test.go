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

// fakePartsEdge serves marquee's parts mode the way four kinds of edge in
// front of a correct or broken origin would: "collapse" gives every viewer
// of a part the same response (an edge collapsing held misses), "origin" a
// response of its own per request, "late" the same response but a second
// after the part ended (an edge slow to release the waiting list), and
// "overlap" parts that repeat the first update of the next part (a broken
// origin). The bytes are a pure function of the clock: update i is written
// at i·50ms + 25ms with seq i, key k(i mod 3) and value {"i":i}.
type fakePartsEdge struct {
	mode string
	D, P time.Duration

	mu   sync.Mutex // guards nreq
	nreq int
}

const fakeTick = 50 // ms between updates

func (e *fakePartsEdge) parts() int { return int(e.D / e.P) }

// partBody returns parts/{k} (or upto/{k}) of segment n.
func (e *fakePartsEdge) partBody(n int64, k int, upto bool) []byte {
	D, P := e.D.Milliseconds(), e.P.Milliseconds()
	start := n * D
	from, to := start+int64(k)*P, start+int64(k+1)*P
	if upto {
		from = start
	}
	var b []byte
	if from == start {
		last := start/fakeTick - 1
		entries := map[string]json.RawMessage{}
		for j := range int64(3) {
			i := last - ((last-j)%3+3)%3
			entries[fmt.Sprintf("k%d", j)] = fmt.Appendf(nil, `{"i":%d}`, i)
		}
		b = sse.AppendRetry(b, 3000)
		b, _ = sse.AppendEvent(b, sse.Event{ID: strconv.FormatInt(last, 10), Type: wire.EventSnapshot,
			Data: mustJSON(wire.Snapshot{Feed: "f", Segment: n, Seq: uint64(last), Time: start, Entries: entries})})
	}
	hi := to / fakeTick
	if e.mode == "overlap" && k < e.parts()-1 {
		hi++ // the first update of the next part, again
	}
	for i := from / fakeTick; i < hi; i++ {
		b, _ = sse.AppendEvent(b, sse.Event{ID: strconv.FormatInt(i, 10), Type: wire.EventUpdate,
			Data: mustJSON(wire.Update{Key: fmt.Sprintf("k%d", i%3), Seq: uint64(i), Time: i*fakeTick + fakeTick/2, Value: fmt.Appendf(nil, `{"i":%d}`, i)})})
	}
	if k == e.parts()-1 {
		b, _ = sse.AppendEvent(b, sse.Event{Type: wire.EventNext, Data: mustJSON(wire.Next{Segment: n + 1, URL: fmt.Sprintf("/v1/feeds/f/segments/%d", n+1)})})
	}
	return b
}

func (e *fakePartsEdge) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/feeds/f", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixMilli()
		D, P := e.D.Milliseconds(), e.P.Milliseconds()
		n := now / D
		w.Write(mustJSON(wire.Descriptor{Feed: "f", SegmentLength: e.D.Seconds(), PartLength: e.P.Seconds(), Parts: e.parts(), Part: int((now - n*D) / P),
			Keepalive: 1, Segment: n, URL: fmt.Sprintf("/v1/feeds/f/segments/%d", n),
			PartURL: "/v1/feeds/f/segments/{n}/parts/{k}", UptoURL: "/v1/feeds/f/segments/{n}/upto/{k}",
			SegmentStart: n * D, SegmentEnd: (n + 1) * D, ServerTime: now, Mode: wire.ModeParts}))
	})
	serve := func(upto bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n, err1 := strconv.ParseInt(r.PathValue("n"), 10, 64)
			k, err2 := strconv.Atoi(r.PathValue("k"))
			end := time.UnixMilli(n*e.D.Milliseconds() + int64(k+1)*e.P.Milliseconds())
			if err1 != nil || err2 != nil || k >= e.parts() || time.Until(end) > 2*e.P {
				http.Error(w, "no", http.StatusNotFound)
				return
			}
			hold := end
			if e.mode == "late" {
				hold = end.Add(time.Second)
			}
			select {
			case <-time.After(time.Until(hold)):
			case <-r.Context().Done():
				return
			}
			e.mu.Lock()
			e.nreq++
			id := fmt.Sprintf("%d-%d-%v", n, k, upto)
			if e.mode == "origin" {
				id += "-req-" + strconv.Itoa(e.nreq)
			}
			e.mu.Unlock()
			b := e.partBody(n, k, upto)
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
			w.Header().Set(cdn.HeaderResponseID, id)
			w.Write(b)
		}
	}
	mux.HandleFunc("GET /v1/feeds/f/segments/{n}/parts/{k}", serve(false))
	mux.HandleFunc("GET /v1/feeds/f/segments/{n}/upto/{k}", serve(true))
	return mux
}

// TestPartsFakeEdges runs the parts-mode probe against four fake edges
// at once: only the collapsing, prompt one over a correct origin passes, and
// each failure names its cause.
func TestPartsFakeEdges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := []struct {
		mode    string
		pass    bool
		verdict string
	}{
		{"collapse", true, "VERDICT: PASS parts mode collapses and is live (20 viewers, 1 origin response per part, median publish-to-viewer latency "},
		{"origin", false, "VERDICT: FAIL no collapse: "},
		{"late", false, "VERDICT: FAIL late: "},
		{"overlap", false, "VERDICT: FAIL not exactly once: 20 viewers"},
	}
	results := make([]*PartsResult, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		e := &fakePartsEdge{mode: tc.mode, D: 2 * time.Second, P: 500 * time.Millisecond}
		srv := httptest.NewServer(e.handler())
		defer srv.Close()
		wg.Go(func() {
			results[i], errs[i] = Parts(ctx, Config{Base: srv.URL, Feed: "f", Viewers: 20, Stagger: 500 * time.Millisecond, Follow: 1, Noise: true})
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
			if !strings.HasSuffix(report.String(), res.Verdict+"\n") {
				t.Errorf("report does not end with the verdict")
			}
			for _, v := range res.Viewers {
				if v.Err != "" {
					t.Errorf("viewer %d: %s", v.Viewer, v.Err)
				}
				if len(v.Fetches) == 0 || !v.Fetches[0].Upto {
					t.Fatalf("viewer %d did not start with upto/{k}", v.Viewer)
				}
				// Contiguous: upto/k, then k+1, … across the segment boundary.
				for j := 1; j < len(v.Fetches); j++ {
					a, b := v.Fetches[j-1], v.Fetches[j]
					next := a.Segment*4 + int64(a.Part) + 1
					if b.Upto || b.Segment*4+int64(b.Part) != next {
						t.Fatalf("viewer %d: segment %d part %d followed segment %d part %d", v.Viewer, b.Segment, b.Part, a.Segment, a.Part)
					}
				}
				if last := v.Fetches[len(v.Fetches)-1]; last.Segment != res.Last || last.Part != 3 {
					t.Errorf("viewer %d stopped at segment %d part %d, want the last part of %d", v.Viewer, last.Segment, last.Part, res.Last)
				}
			}
			if tc.mode == "collapse" {
				if res.ExactlyOnce != 20 || len(res.Latency) == 0 || res.Held == 0 {
					t.Errorf("exactly once %d, %d latencies, %d held", res.ExactlyOnce, len(res.Latency), res.Held)
				}
				for _, v := range res.Viewers {
					// Seq i is written at i·50ms+25ms: the viewer holds
					// every seq from its first snapshot to its last part.
					if got, want := len(v.Applied), int(v.Seq-v.FirstSeq); got != want {
						t.Errorf("viewer %d applied %d updates between seq %d and %d", v.Viewer, got, v.FirstSeq, v.Seq)
					}
					if len(v.Entries) != 3 {
						t.Errorf("viewer %d holds %d keys", v.Viewer, len(v.Entries))
					}
				}
				for _, st := range res.Parts {
					if st.Responses != 1 || !st.Identical {
						t.Errorf("segment %d %s: %d responses, identical %v", st.Segment, partName(st.Part, st.Upto), st.Responses, st.Identical)
					}
				}
			}
		})
	}
}

// TestPartsWithoutParts: an origin whose descriptor offers no parts
// mode cannot be probed in parts mode.
func TestPartsWithoutParts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &fakeEdge{mode: "stream", D: 2 * time.Second, segs: map[int64]*fakeSeg{}}
	srv := httptest.NewServer(e.handler(ctx))
	defer srv.Close()
	_, err := Parts(ctx, Config{Base: srv.URL, Feed: "f", Viewers: 2})
	if err == nil || !strings.Contains(err.Error(), "no parts mode") {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyPartsState(t *testing.T) {
	v := PartsViewer{}
	v.applyUpdate(1, "a", []byte(`{"x":1}`), TimedEvent{Seq: 5})
	if len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "before any snapshot") {
		t.Fatalf("problems %q", v.Problems)
	}
	v = PartsViewer{}
	v.applySnapshot(1, 10, nil)
	v.applyUpdate(1, "a", []byte(`{"x":1}`), TimedEvent{Seq: 11})
	v.applyUpdate(1, "b", []byte(`{"x":2}`), TimedEvent{Seq: 12})
	v.applyUpdate(1, "a", []byte(`{"x":0}`), TimedEvent{Seq: 11}) // duplicate
	v.applyUpdate(1, "b", []byte(`null`), TimedEvent{Seq: 13})    // delete
	if v.FirstSeq != 10 || v.Seq != 13 || v.Dropped != 1 || len(v.Applied) != 3 || string(v.Entries["a"]) != `{"x":1}` || len(v.Entries) != 1 {
		t.Fatalf("state %+v", v)
	}
	// The next segment's snapshot must agree with what was built.
	v.applySnapshot(2, 13, map[string]json.RawMessage{"a": json.RawMessage(`{"x":1}`)})
	if len(v.Problems) != 0 {
		t.Fatalf("problems %q", v.Problems)
	}
	v.applySnapshot(3, 13, map[string]json.RawMessage{"a": json.RawMessage(`{"x":2}`)})
	v.applySnapshot(4, 20, map[string]json.RawMessage{})
	v.applySnapshot(5, 19, map[string]json.RawMessage{})
	want := []string{"differs from the state", "updates were missed", "below the 20 held"}
	if len(v.Problems) != len(want) {
		t.Fatalf("problems %q", v.Problems)
	}
	for i, w := range want {
		if !strings.Contains(v.Problems[i], w) {
			t.Errorf("problem %q lacks %q", v.Problems[i], w)
		}
	}
}
