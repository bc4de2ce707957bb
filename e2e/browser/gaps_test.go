package browser_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/internal/testenv"
	"marquee/sse"
	"marquee/wire"
)

// fakeOrigin is a scripted stand-in for marquee: it serves the real
// dashboard and client (the files of origin/web, which the origin embeds
// and serves byte for byte) and one feed, "gaps", whose descriptor and
// responses a test writes by hand. So the page can be shown what no single
// correct origin serves: an edge that mixed two replicas' parts into a
// gap, or a resync snapshot whose seq is lower than the page holds.
type fakeOrigin struct {
	URL  string
	web  string // the directory origin/web
	desc wire.Descriptor
	quit chan struct{} // closed at cleanup: held requests end

	mu     sync.Mutex          // guards the fields below
	script map[string][]string // path -> bodies of its 1st, 2nd, ... request (the last repeats)
	log    []string            // requested paths, in order
}

const (
	gapFeed    = "gaps"
	gapSegment = 1000 // segment and part the descriptor names; the page
	gapPart    = 4    // never compares them with its clock
)

// startFakeOrigin starts a fake origin whose descriptor recommends mode.
// The segment in progress ends 299 s from now, so no rotation happens
// unless a test scripts one.
func startFakeOrigin(t *testing.T, mode string) *fakeOrigin {
	t.Helper()
	now := time.Now().UnixMilli()
	base := "/v1/feeds/" + gapFeed
	f := &fakeOrigin{
		web:  filepath.Join(moduleRoot(t), "origin", "web"),
		quit: make(chan struct{}),
		desc: wire.Descriptor{
			Feed: gapFeed, SegmentLength: 300, PartLength: 10, Keepalive: 15,
			Segment: gapSegment, URL: base + "/segments/" + strconv.Itoa(gapSegment),
			SegmentStart: now - 1000, SegmentEnd: now + 299_000,
			NextURL:   base + "/segments/" + strconv.Itoa(gapSegment+1),
			DirectURL: base + "/events", SnapshotURL: base + "/snapshot",
			ServerTime: now, Modes: []string{wire.ModeStream, wire.ModeParts, wire.ModeDirect}, Mode: mode,
			Parts: 30, Part: gapPart,
			PartURL: base + "/segments/{n}/parts/{k}", UptoURL: base + "/segments/{n}/upto/{k}",
		},
		script: map[string][]string{},
	}
	ts := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.quit)
		ts.Close()
	})
	f.URL = ts.URL
	return f
}

// on scripts the responses to path: the first request gets bodies[0], the
// next bodies[1], ..., and every later one the last. Unscripted streams
// and parts are held until the test ends (a part in progress, a quiet
// segment).
func (f *fakeOrigin) on(path string, bodies ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[path] = bodies
}

// requests returns how often each path was requested.
func (f *fakeOrigin) requests() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, p := range f.log {
		n[p]++
	}
	return n
}

func (f *fakeOrigin) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/":
		http.ServeFile(w, r, filepath.Join(f.web, "index.html"))
		return
	case p == "/v1/client.js" || p == "/v1/board.js":
		http.ServeFile(w, r, filepath.Join(f.web, filepath.Base(p)))
		return
	case strings.HasPrefix(p, "/assets/"):
		http.ServeFile(w, r, filepath.Join(f.web, filepath.Base(p)))
		return
	case p == "/v1/feeds":
		writeJSON(w, wire.FeedList{Feeds: []wire.FeedRef{{Feed: gapFeed, URL: "/v1/feeds/" + gapFeed}}, ServerTime: time.Now().UnixMilli()})
		return
	case p == "/v1/feeds/"+gapFeed:
		d := f.desc
		d.ServerTime = time.Now().UnixMilli()
		writeJSON(w, d)
		return
	case !strings.HasPrefix(p, "/v1/feeds/"+gapFeed+"/"):
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	bodies, ok := f.script[p]
	i := 0
	for _, q := range f.log {
		if q == p {
			i++
		}
	}
	f.log = append(f.log, p)
	f.mu.Unlock()

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	stream := !strings.Contains(p, "/parts/") && !strings.Contains(p, "/upto/") // a segment or the direct stream
	if ok && strings.HasSuffix(p, "/snapshot") {
		h.Set("Content-Type", "application/json")
		w.Write([]byte(bodies[min(i, len(bodies)-1)]))
		return
	}
	if ok || stream {
		h.Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if ok {
			w.Write([]byte(bodies[min(i, len(bodies)-1)]))
		}
		w.(http.Flusher).Flush()
		if ok && !stream {
			return
		}
	}
	select { // a stream stays open; an unscripted part is in progress
	case <-r.Context().Done():
	case <-f.quit:
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// values are the entries of a snapshot: key -> {"v": value}.
type values map[string]int

func (vs values) entries() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range vs {
		out[k] = json.RawMessage(fmt.Sprintf(`{"v":%d}`, v))
	}
	return out
}

func snapshotEvent(segment int64, seq uint64, vs values) sse.Event {
	b, _ := json.Marshal(wire.Snapshot{Feed: gapFeed, Segment: segment, Seq: seq, Time: time.Now().UnixMilli(), Entries: vs.entries()})
	return sse.Event{ID: strconv.FormatUint(seq, 10), Type: wire.EventSnapshot, Data: b}
}

func updateEvent(key string, seq, prev uint64, v int) sse.Event {
	u := wire.Update{Key: key, Seq: seq, Prev: prev, Time: time.Now().UnixMilli(), Value: json.RawMessage(fmt.Sprintf(`{"v":%d}`, v))}
	b, _ := json.Marshal(u)
	return sse.Event{ID: strconv.FormatUint(seq, 10), Type: wire.EventUpdate, Data: b}
}

func nextEvent(segment int64) sse.Event {
	b, _ := json.Marshal(wire.Next{Segment: segment, URL: "/v1/feeds/" + gapFeed + "/segments/" + strconv.FormatInt(segment, 10)})
	return sse.Event{Type: wire.EventNext, Data: b}
}

// body encodes events as an SSE body, after a retry line as the origin writes.
func body(evs ...sse.Event) string {
	b := sse.AppendRetry(nil, 3000)
	for _, e := range evs {
		var err error
		if b, err = sse.AppendEvent(b, e); err != nil {
			panic(err)
		}
	}
	return string(b)
}

func segPath(n int64, rest string) string {
	return "/v1/feeds/" + gapFeed + "/segments/" + strconv.FormatInt(n, 10) + rest
}

// waitFor waits until the page's feed holds seq with want applied (and
// is live), and returns the page's report of it.
func waitFor(t *testing.T, b *browser, seq uint64, applied []uint64) pageFeed {
	t.Helper()
	var p pageFeed
	testenv.Eventually(t, 20*time.Second, func() error {
		page, err := b.feeds()
		if err != nil {
			return err
		}
		p = page[gapFeed]
		if p.Seq != seq || !slices.Equal(p.Applied, applied) || p.Status != "live" {
			return fmt.Errorf("page holds seq %d, applied %v, %q; want seq %d, applied %v, live", p.Seq, p.Applied, p.Status, seq, applied)
		}
		return nil
	})
	return p
}

// checkState checks the page's state is exactly vs.
func checkState(t *testing.T, p pageFeed, vs values) {
	t.Helper()
	want := vs.entries()
	if len(p.State) != len(want) {
		t.Errorf("state %v, want %v", p.State, vs)
	}
	for k, v := range want {
		if !sameJSON(p.State[k], v) {
			t.Errorf("state %s = %s, want %s", k, p.State[k], v)
		}
	}
}

// chipText returns the dashboard's gap note on the feed's chip.
func chipText(b *browser) string {
	var s string
	b.eval(`document.querySelector("#feed-status .gaps")?.textContent ?? "no gap note"`, &s)
	return s
}

// TestClientRepairsGap shows the page an update whose prev skips a
// sequence, as when an edge served part k from one replica and part k+1
// from another that cut them differently, and checks it repairs itself:
// it drops that update, fetches the repair (parts: upto/{k} of the part
// just read; stream: the segment again; direct: a new stream), counts one
// gap repaired, shows it on the feed's chip and ends in the correct state.
// The last case gets the gap again from the re-read segment (an edge's
// cached copy) and falls back, after a back-off, to the snapshot JSON.
//
// Seq 10 is a snapshot {a:1, b:1}; then 11 a=2, 12 c=1 (the one missed),
// 13 b=3, 14 a=4.
func TestClientRepairsGap(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	full := values{"a": 4, "b": 3, "c": 1}
	s10 := snapshotEvent(gapSegment, 10, values{"a": 1, "b": 1})
	u11, u12, u13, u14 := updateEvent("a", 11, 10, 2), updateEvent("c", 12, 11, 1), updateEvent("b", 13, 12, 3), updateEvent("a", 14, 13, 4)
	s13 := snapshotEvent(gapSegment, 13, values{"a": 2, "b": 3, "c": 1})
	seg := segPath(gapSegment, "")
	part := func(kind string, k int) string { return segPath(gapSegment, "/"+kind+"/"+strconv.Itoa(k)) }

	t.Run("parts", func(t *testing.T) {
		f := startFakeOrigin(t, wire.ModeParts)
		f.on(part("upto", gapPart), body(s10, u11))
		f.on(part("parts", gapPart+1), body(u13)) // 12 is in no part this page reads
		f.on(part("upto", gapPart+1), body(s10, u11, u12, u13))
		f.on(part("parts", gapPart+2), body(u14))
		b := startBrowser(t)
		b.open(f.URL + "/")
		p := waitFor(t, b, 14, []uint64{11, 12, 13, 14})
		checkState(t, p, full)
		checkRepaired(t, b, p, 1)
		time.Sleep(600 * time.Millisecond) // a tick of the page: event age, footer
		b.screenshot("dashboard-gap-repaired.png")
		var got []string
		for _, r := range b.fetchRequests() {
			if strings.Contains(r.URL, "/segments/") {
				got = append(got, strings.TrimPrefix(r.URL, f.URL))
			}
		}
		want := []string{part("upto", gapPart), part("parts", gapPart+1), part("upto", gapPart+1), part("parts", gapPart+2), part("parts", gapPart+3)}
		if !slices.Equal(got, want) {
			t.Errorf("part requests:\n got %q\nwant %q", got, want)
		}
		if p.DroppedSnapshots != 1 { // the repair's snapshot, older than held
			t.Errorf("%d snapshots dropped, want 1", p.DroppedSnapshots)
		}
	})

	t.Run("stream", func(t *testing.T) {
		f := startFakeOrigin(t, wire.ModeStream)
		f.on(seg, body(s10, u11, u13), body(s10, u11, u12, u13, u14)) // from two replicas
		b := startBrowser(t)
		b.open(f.URL + "/")
		p := waitFor(t, b, 14, []uint64{11, 12, 13, 14})
		checkState(t, p, full)
		checkRepaired(t, b, p, 1)
		if got, want := b.eventSources(), []string{f.URL + seg, f.URL + seg}; !slices.Equal(got, want) {
			t.Errorf("EventSources %q, want %q (the segment, then again)", got, want)
		}
	})

	t.Run("direct", func(t *testing.T) {
		f := startFakeOrigin(t, wire.ModeDirect)
		events := "/v1/feeds/" + gapFeed + "/events"
		f.on(events, body(s10, u11, u13), body(s13, u14))
		b := startBrowser(t)
		b.open(f.URL + "/")
		p := waitFor(t, b, 14, []uint64{11, 14})
		checkState(t, p, full)
		checkRepaired(t, b, p, 1)
		if got, want := b.eventSources(), []string{f.URL + events, f.URL + events}; !slices.Equal(got, want) {
			t.Errorf("EventSources %q, want %q (the stream, then a new one)", got, want)
		}
		if want := []uint64{10, 13}; !slices.Equal(p.Snapshots, want) {
			t.Errorf("snapshots %v, want %v", p.Snapshots, want)
		}
	})

	t.Run("stream-gap-cached", func(t *testing.T) {
		f := startFakeOrigin(t, wire.ModeStream)
		f.on(seg, body(s10, u11, u13)) // every time: the edge's copy
		f.on("/v1/feeds/"+gapFeed+"/snapshot", string(s13.Data))
		b := startBrowser(t)
		b.open(f.URL + "/")
		p := waitFor(t, b, 13, []uint64{11})
		checkState(t, p, values{"a": 2, "b": 3, "c": 1})
		checkRepaired(t, b, p, 2)
		// No storm: nothing more is asked for once repaired.
		time.Sleep(2 * time.Second)
		if got, want := f.requests(), map[string]int{seg: 2, "/v1/feeds/" + gapFeed + "/snapshot": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("requests %v, want %v (the segment twice, the snapshot JSON once)", got, want)
		}
	})
}

// checkRepaired checks the page met exactly one gap, repaired it in
// repairs attempts, shows it on the chip and stayed live throughout.
func checkRepaired(t *testing.T, b *browser, p pageFeed, repairs int) {
	t.Helper()
	if p.Gaps != 1 || p.GapsRepaired != 1 || p.Repairs != repairs {
		t.Errorf("gaps %d, repaired %d, in %d attempts; want 1, 1, %d", p.Gaps, p.GapsRepaired, p.Repairs, repairs)
	}
	if p.DroppedGaps < 1 {
		t.Errorf("no update dropped for a gap")
	}
	if want := []string{"catching-up", "live"}; !slices.Equal(p.Statuses, want) {
		t.Errorf("statuses %v, want %v (a repair is no reconnect)", p.Statuses, want)
	}
	if got, want := chipText(b), " · 1 gap repaired"; got != want {
		t.Errorf("chip shows %q, want %q", got, want)
	}
	t.Logf("dropped %d updates for the gap, %d duplicates, %d old snapshots; snapshots %v", p.DroppedGaps, p.DroppedUpdates, p.DroppedSnapshots, p.Snapshots)
}

// TestClientResyncs shows the page a snapshot in the middle of a segment
// (or stream) whose seq is lower than the page holds, as the origin writes
// after it resumed past lost messages or the stream was recreated and its
// sequences restarted: it replaces the state, and the seq rule goes on from
// its seq (an update at or below it is dropped, the next applied). In
// stream and parts mode the segment then ends, and the next one starts with
// a snapshot of a lower seq again: the start of a later segment replaces
// the state too.
//
// Seq 100 is a snapshot {a:1, b:1}, then 101 a=2; the resync is seq 5
// {a:7, c:1}, then 5 (old) and 6 c=2; segment 1001 starts at seq 3 {d:1},
// then 4 d=2.
func TestClientResyncs(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	first := []sse.Event{
		snapshotEvent(gapSegment, 100, values{"a": 1, "b": 1}),
		updateEvent("a", 101, 100, 2),
		snapshotEvent(gapSegment, 5, values{"a": 7, "c": 1}),
		updateEvent("a", 5, 4, 9), // at the resync's seq: dropped
		updateEvent("c", 6, 5, 2),
	}
	next := []sse.Event{nextEvent(gapSegment + 1)}
	later := []sse.Event{snapshotEvent(gapSegment+1, 3, values{"d": 1}), updateEvent("d", 4, 3, 2)}
	for _, mode := range []string{wire.ModeParts, wire.ModeStream, wire.ModeDirect} {
		t.Run(mode, func(t *testing.T) {
			f := startFakeOrigin(t, mode)
			switch mode {
			case wire.ModeParts:
				f.on(segPath(gapSegment, "/upto/"+strconv.Itoa(gapPart)), body(first[:2]...))
				f.on(segPath(gapSegment, "/parts/"+strconv.Itoa(gapPart+1)), body(append(first[2:], next...)...))
				f.on(segPath(gapSegment+1, "/parts/0"), body(later...))
			case wire.ModeStream:
				f.on(segPath(gapSegment, ""), body(append(first, next...)...))
				f.on(segPath(gapSegment+1, ""), body(later...))
			case wire.ModeDirect:
				f.on("/v1/feeds/"+gapFeed+"/events", body(first...))
			}
			b := startBrowser(t)
			b.open(f.URL + "/")
			var p pageFeed
			if mode == wire.ModeDirect {
				p = waitFor(t, b, 6, []uint64{101, 6})
				checkState(t, p, values{"a": 7, "c": 2})
				if want := []uint64{100, 5}; !slices.Equal(p.Snapshots, want) {
					t.Errorf("snapshots %v, want %v", p.Snapshots, want)
				}
			} else {
				p = waitFor(t, b, 4, []uint64{101, 6, 4})
				checkState(t, p, values{"d": 2})
				if want := []uint64{100, 5, 3}; !slices.Equal(p.Snapshots, want) {
					t.Errorf("snapshots %v, want %v", p.Snapshots, want)
				}
			}
			if p.DroppedUpdates != 1 || p.DroppedSnapshots != 0 {
				t.Errorf("dropped %d updates and %d snapshots, want 1 update (seq 5) and no snapshot", p.DroppedUpdates, p.DroppedSnapshots)
			}
			if p.Gaps != 0 || p.Repairs != 0 {
				t.Errorf("gaps %d, repairs %d: a resync is no gap", p.Gaps, p.Repairs)
			}
			if want := []string{"catching-up", "live"}; !slices.Equal(p.Statuses, want) {
				t.Errorf("statuses %v, want %v", p.Statuses, want)
			}
			if got := chipText(b); got != "" {
				t.Errorf("chip shows %q with no gap", got)
			}
		})
	}
}
