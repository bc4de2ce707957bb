package segmenter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"marquee/sse"
	"marquee/wire"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func testConfig() Config {
	c := Defaults()
	c.SegmentLength = 10 * time.Second
	c.PartLength = time.Second
	c.Keepalive = 3 * time.Second
	c.History = 8
	return c
}

// newTestHub returns a loaded hub whose clock stands at the start of
// segment 100 plus the lateness allowance: a feed opened now opens
// segment 100 mid-segment, in part 0 (see open and rotated).
func newTestHub(t *testing.T, cfg Config) (*Hub, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0).Add(cfg.PartLateness)}
	h, err := New(cfg, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Loaded()
	return h, clk
}

// open registers feed name on a loaded hub and opens its current segment
// (Ensure alone never opens one; the next Tick does).
func open(h *Hub, name string) {
	h.Ensure(name)
	h.Tick(h.Now())
}

// rotated returns a loaded hub with feed name whose segment 100 was opened
// by rotation (at its start, FirstPart 0, the snapshot in part 0), as on an
// origin that was running before it. The clock stands at 1000 s + L.
func rotated(t *testing.T, cfg Config, name string) (*Hub, *fakeClock, *Feed, *Log) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(999, 500_000_000)}
	h, err := New(cfg, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Loaded()
	open(h, name)
	clk.Set(time.Unix(1000, 0).Add(cfg.PartLateness))
	h.Tick(clk.Now())
	f, _ := h.Feed(name)
	l := f.Current()
	if l.N != 100 || l.FirstPart() != 0 {
		t.Fatalf("segment %d, first part %d; want 100 opened at its start", l.N, l.FirstPart())
	}
	return h, clk, f, l
}

func decodeAll(t *testing.T, b []byte) []sse.Event {
	t.Helper()
	d := sse.NewDecoder(strings.NewReader(string(b)))
	var evs []sse.Event
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		evs = append(evs, ev)
	}
	return evs
}

func val(s string) json.RawMessage { return json.RawMessage(s) }

func TestSegmentLifecycle(t *testing.T) {
	cfg := testConfig()
	h, clk := newTestHub(t, cfg)
	start := time.Unix(1000, 0)
	if err := h.Apply("scores", Update{Key: "a", Value: val(`{"v":1}`), Seq: 5, Time: start}); err != nil {
		t.Fatal(err)
	}
	f, _ := h.Feed("scores")
	clk.Set(start.Add(2 * time.Second))
	if err := h.Apply("scores", Update{Key: "b", Value: val(`{"v":2}`), Seq: 7, Time: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	l := f.Current()
	if got, want := l.N, int64(100); got != want {
		t.Fatalf("segment = %d, want %d", got, want)
	}
	evs := decodeAll(t, l.Bytes())
	// The feed's first message is folded into its first snapshot.
	if got, want := len(evs), 2; got != want {
		t.Fatalf("events = %d, want %d: %q", got, want, l.Bytes())
	}
	if !strings.HasPrefix(string(l.Bytes()), "retry: 3000\n") {
		t.Errorf("segment does not start with retry: %q", l.Bytes())
	}
	if evs[0].Type != "snapshot" || evs[1].Type != "update" {
		t.Errorf("types = %q %q", evs[0].Type, evs[1].Type)
	}
	if got, want := evs[0].ID, "5"; got != want {
		t.Errorf("snapshot id = %q, want %q", got, want)
	}
	if got, want := evs[1].ID, "7"; got != want {
		t.Errorf("id = %q, want %q", got, want)
	}

	// Roll over, once the lateness allowance after the boundary ran out:
	// the old segment ends with next, the new one's snapshot holds both
	// keys and is stamped with the segment's start.
	clk.Set(start.Add(10 * time.Second))
	h.Tick(clk.Now())
	if got, want := l.State(), Open; got != want {
		t.Fatalf("state at the boundary = %v, want %v (allowance)", got, want)
	}
	clk.Set(start.Add(10*time.Second + cfg.PartLateness))
	h.Tick(clk.Now())
	if got, want := l.State(), Closed; got != want {
		t.Fatalf("old state = %v, want %v", got, want)
	}
	evs = decodeAll(t, l.Bytes())
	last := evs[len(evs)-1]
	if got, want := last.Type, "next"; got != want {
		t.Fatalf("last event = %q, want %q", got, want)
	}
	if got, want := string(last.Data), `{"segment":101,"url":"/v1/feeds/scores/segments/101"}`; got != want {
		t.Errorf("next data = %s, want %s", got, want)
	}
	nl := f.Current()
	if nl.N != 101 {
		t.Fatalf("new segment = %d", nl.N)
	}
	evs = decodeAll(t, nl.Bytes())
	var snap wire.Snapshot
	if err := json.Unmarshal(evs[0].Data, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Seq != 7 || snap.Segment != 101 || snap.Time != 1010_000 || len(snap.Entries) != 2 || string(snap.Entries["b"]) != `{"v":2}` {
		t.Errorf("snapshot = %+v", snap)
	}
	if got, want := evs[0].ID, "7"; got != want {
		t.Errorf("snapshot id = %q, want %q", got, want)
	}
	// The closed segment stays readable within retention, then goes.
	if _, ok := f.Segment(100); !ok {
		t.Error("segment 100 not retained")
	}
	clk.Set(start.Add(41 * time.Second)) // end 1010 + retention 20 s < 1041
	h.Tick(clk.Now())
	if _, ok := f.Segment(100); ok {
		t.Error("segment 100 retained past retention")
	}
}

func TestLoadingOpensSegmentsWithFullSnapshot(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h, err := New(testConfig(), clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An allow-listed feed registered before the replay: no segment yet.
	h.Ensure("f")
	h.Tick(clk.Now())
	for i := 1; i <= 50; i++ {
		h.Apply("f", Update{Key: "k" + string(rune('a'+i%10)), Value: val(`{"i":1}`), Seq: uint64(i), Time: clk.Now()})
	}
	f, _ := h.Feed("f")
	if f.Current() != nil {
		t.Fatal("segment opened while loading")
	}
	select {
	case <-h.LoadedC():
		t.Fatal("loaded before Loaded")
	default:
	}
	h.Loaded()
	<-h.LoadedC()
	evs := decodeAll(t, f.Current().Bytes())
	if len(evs) != 1 || evs[0].Type != "snapshot" || evs[0].ID != "50" {
		t.Fatalf("after load: %d events, first %+v", len(evs), evs[0])
	}
	// A replay is not a complete history: a direct viewer from before it
	// gets a snapshot, one that is up to date resumes.
	if _, _, ok, _, _ := f.DirectSince(45, nil); ok {
		t.Errorf("direct since 45 resumed from a replay")
	}
	h.Apply("f", Update{Key: "kz", Value: val(`{}`), Seq: 51, Time: clk.Now()})
	if out, last, ok, _, _ := f.DirectSince(50, nil); !ok || last != 51 || len(decodeAll(t, out)) != 1 {
		t.Errorf("direct since 50: ok=%v last=%d", ok, last)
	}
}

func TestInvalidValueRefused(t *testing.T) {
	h, clk := newTestHub(t, testConfig())
	open(h, "f")
	for _, v := range []string{`{"a":`, "{\"a\":\"\xff\"}"} {
		if err := h.Apply("f", Update{Key: "k", Value: val(v), Seq: 1, Time: clk.Now()}); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("value %q: err = %v", v, err)
		}
	}
	if err := h.Apply("f", Update{Key: "k\xff", Value: val(`{}`), Seq: 1, Time: clk.Now()}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("key: err = %v", err)
	}
	if err := h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: 1, Time: clk.Now()}); err != nil {
		t.Errorf("good value after bad ones: %v", err)
	}
}

func TestSkippedSegmentsNamesCurrentNext(t *testing.T) {
	h, clk := newTestHub(t, testConfig())
	open(h, "f")
	f, _ := h.Feed("f")
	l := f.Current()
	clk.Set(time.Unix(1035, 0)) // three segments later
	h.Tick(clk.Now())
	evs := decodeAll(t, l.Bytes())
	if got, want := string(evs[len(evs)-1].Data), `{"segment":103,"url":"/v1/feeds/f/segments/103"}`; got != want {
		t.Errorf("next = %s, want %s", got, want)
	}
}

func TestApplyErrors(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFeeds = 1
	cfg.MaxKeys = 2
	h, _ := newTestHub(t, cfg)
	now := time.Unix(1000, 0)
	if err := h.Apply("a", Update{Key: "k1", Value: val(`{}`), Seq: 1, Time: now}); err != nil {
		t.Fatal(err)
	}
	if err := h.Apply("b", Update{Key: "k1", Value: val(`{}`), Seq: 2, Time: now}); !errors.Is(err, ErrTooManyFeeds) {
		t.Errorf("second feed: err = %v, want ErrTooManyFeeds", err)
	}
	if err := h.Apply("a", Update{Key: "k1", Value: val(`{}`), Seq: 1, Time: now}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate: err = %v", err)
	}
	h.Apply("a", Update{Key: "k2", Value: val(`{}`), Seq: 3, Time: now})
	if err := h.Apply("a", Update{Key: "k3", Value: val(`{}`), Seq: 4, Time: now}); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("third key: err = %v, want ErrTooManyKeys", err)
	}
	// Updating or deleting an existing key is fine at the cap, and the next good message is served.
	if err := h.Apply("a", Update{Key: "k2", Seq: 5, Time: now}); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := h.Apply("a", Update{Key: "k3", Value: val(`{"x":1}`), Seq: 6, Time: now}); err != nil {
		t.Errorf("after delete: %v", err)
	}
	f, _ := h.Feed("a")
	evs := decodeAll(t, f.Current().Bytes())
	if got, want := string(evs[len(evs)-2].Data), `{"key":"k2","seq":5,"prev":3,"time":1000000,"value":null}`; got != want {
		t.Errorf("delete event = %s, want %s", got, want)
	}
}

// TestKeepaliveAndParts: an update goes into the part of its timestamp; a
// part closes once its allowance ran out; a keepalive ends the first part
// that closes Keepalive or more after the last write (stream time), and
// parts add up to the segment.
func TestKeepaliveAndParts(t *testing.T) {
	cfg := testConfig() // P 1 s, H 3 s, L 250 ms
	h, clk, _, l := rotated(t, cfg, "f")
	start := l.Start
	snapLen := l.Len()
	if got := l.FinishedParts(); got != 0 {
		t.Fatalf("finished parts at start = %d", got)
	}
	clk.Set(start.Add(1500 * time.Millisecond))
	h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: 1, Time: clk.Now()})
	afterUpdate := l.Len()
	next := h.Tick(clk.Now())
	if got, want := next, start.Add(2*time.Second+cfg.PartLateness); !got.Equal(want) {
		t.Errorf("next tick = %v, want %v (end of part 1 + allowance)", got, want)
	}
	p0, ready, _, _ := l.Part(0)
	if !ready || len(p0) != snapLen {
		t.Errorf("part 0: ready=%v len=%d, want %d", ready, len(p0), snapLen)
	}
	if _, ready, _, wake := l.Part(1); ready || wake == nil {
		t.Errorf("part 1 ready before its end")
	}
	clk.Set(start.Add(2 * time.Second)) // part 1 ended, its allowance did not
	h.Tick(clk.Now())
	if _, ready, _, _ := l.Part(1); ready {
		t.Errorf("part 1 ready within its allowance")
	}
	clk.Set(start.Add(4500 * time.Millisecond)) // 3 s after the last write
	h.Tick(clk.Now())
	if got := l.Len(); got != afterUpdate {
		t.Errorf("wrote %q before part 4 closed", l.Bytes()[afterUpdate:])
	}
	clk.Set(start.Add(5*time.Second + cfg.PartLateness))
	h.Tick(clk.Now())
	// Part 4 ends at 5 s, the first part end 3 s or more after the update at 1.5 s.
	if p4, ready, _, _ := l.Part(4); !ready || string(p4) != ": keepalive\n\n" {
		t.Errorf("part 4: ready=%v %q, want the keepalive", ready, p4)
	}
	p1, ready, _, _ := l.Part(1)
	if !ready || len(p1) != afterUpdate-snapLen {
		t.Errorf("part 1: ready=%v %q", ready, p1)
	}
	for k := 2; k <= 3; k++ {
		if p, ready, _, _ := l.Part(k); !ready || len(p) != 0 {
			t.Errorf("part %d: ready=%v %q, want empty", k, ready, p)
		}
	}
	up, ready, _, _ := l.UpTo(3)
	if !ready || string(up) != string(l.Bytes()[:len(up)]) || len(up) != afterUpdate {
		t.Errorf("upto 3: ready=%v len=%d", ready, len(up))
	}
	clk.Set(start.Add(10*time.Second + cfg.PartLateness))
	h.Tick(clk.Now())
	if got, want := l.FinishedParts(), 10; got != want {
		t.Fatalf("finished parts after close = %d, want %d", got, want)
	}
	var all []byte
	for k := 0; k < 10; k++ {
		p, ready, _, _ := l.Part(k)
		if !ready {
			t.Fatalf("part %d not ready", k)
		}
		if want := k == 4 || k == 7; want != (string(p) == ": keepalive\n\n") {
			t.Errorf("part %d = %q; keepalives end parts 4 and 7", k, p)
		}
		all = append(all, p...)
	}
	if string(all) != string(l.Bytes()) {
		t.Errorf("parts do not add up to the segment")
	}
}

// TestPartsBeforeOpenAreNeverReady: a log opened in the middle of its
// segment has no bytes for the parts before, and the part open at opening
// (the one holding now − L) holds its snapshot instead of the updates other
// origins have there: none of them may look finished, and the first part
// served is the one after.
func TestPartsBeforeOpenAreNeverReady(t *testing.T) {
	for _, tc := range []struct {
		at    time.Duration // after the start of segment 100
		first int
		parts int // finished at opening, counting those before FirstPart
		n     int64
	}{
		{3500 * time.Millisecond, 4, 3, 100},
		{3100 * time.Millisecond, 3, 2, 100}, // 2.85 s: part 2 may still receive updates elsewhere
		{100 * time.Millisecond, 10, 9, 99},  // within the allowance of segment 99: its last part
	} {
		cfg := testConfig()
		h, clk := newTestHub(t, cfg)
		clk.Set(time.Unix(1000, 0).Add(tc.at))
		open(h, "f")
		f, _ := h.Feed("f")
		l := f.Current()
		if l.N != tc.n || l.FirstPart() != tc.first || l.FinishedParts() != tc.parts {
			t.Errorf("opened at +%v: segment %d FirstPart %d finished %d, want %d %d %d", tc.at, l.N, l.FirstPart(), l.FinishedParts(), tc.n, tc.first, tc.parts)
			continue
		}
		clk.Set(l.Start.Add(time.Duration(tc.first+1)*cfg.PartLength + cfg.PartLateness))
		h.Tick(clk.Now())
		for k := 0; k < min(tc.first, l.Parts()); k++ {
			if _, ready, _, wake := l.Part(k); ready || wake != nil {
				t.Errorf("+%v: part %d: ready=%v wake=%v", tc.at, k, ready, wake != nil)
			}
			if _, ready, _, _ := l.UpTo(k); ready {
				t.Errorf("+%v: upto %d ready", tc.at, k)
			}
		}
		if tc.first >= l.Parts() {
			// Nothing of segment 99 is served; 100 opened by rotation is.
			if c := f.Current(); c.N != 100 || c.FirstPart() != 0 {
				t.Errorf("+%v: then segment %d FirstPart %d, want 100 from part 0", tc.at, c.N, c.FirstPart())
			}
			continue
		}
		if p, ready, _, _ := l.Part(tc.first); !ready || len(p) != 0 {
			t.Errorf("+%v: part %d: ready=%v %q", tc.at, tc.first, ready, p)
		}
		if up, ready, _, _ := l.UpTo(tc.first); !ready || len(up) != l.Len() || !strings.Contains(string(up), "event: snapshot") {
			t.Errorf("+%v: upto %d: ready=%v %q", tc.at, tc.first, ready, up)
		}
		if p, _, _, _ := l.UpTo(tc.first); !strings.HasPrefix(string(p), "retry: 3000\n") {
			t.Errorf("+%v: upto does not start the log", tc.at)
		}
	}

	// Exactly at a segment's start plus the allowance, with nothing stamped
	// in the segment yet, the log is what a rotation opens: complete.
	cfg := testConfig()
	h, clk := newTestHub(t, cfg) // at 1000 s + L
	h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: 1, Time: time.Unix(999, 0)})
	f, _ := h.Feed("f")
	l := f.Current()
	clk.Set(time.Unix(1001, 0).Add(cfg.PartLateness))
	h.Tick(clk.Now())
	if p, ready, _, _ := l.Part(0); l.N != 100 || l.FirstPart() != 0 || !ready || !strings.Contains(string(p), "event: snapshot") {
		t.Errorf("opened at the start: segment %d FirstPart %d, part 0 ready %v %q", l.N, l.FirstPart(), ready, p)
	}
}

func TestDirectHistory(t *testing.T) {
	h, _ := newTestHub(t, testConfig()) // history 8
	now := time.Unix(1000, 0)
	for i := 1; i <= 5; i++ {
		h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: uint64(i * 10), Time: now})
	}
	f, _ := h.Feed("f")
	out, last, ok, _, _ := f.DirectSince(20, nil)
	if !ok || last != 50 || len(decodeAll(t, out)) != 3 {
		t.Fatalf("since 20: ok=%v last=%d %q", ok, last, out)
	}
	if _, _, ok, _, _ := f.DirectSince(60, nil); ok {
		t.Error("resume from a future id should fail")
	}
	for i := 6; i <= 20; i++ {
		h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: uint64(i * 10), Time: now})
	}
	if _, _, ok, _, _ := f.DirectSince(20, nil); ok {
		t.Error("resume from an evicted id should fail")
	}
	out, last, ok, _, _ = f.DirectSince(120, nil)
	if !ok || last != 200 || len(decodeAll(t, out)) != 8 {
		t.Errorf("since 120: ok=%v last=%d n=%d", ok, last, len(decodeAll(t, out)))
	}
}

func TestAbortWakesReaders(t *testing.T) {
	h, _ := newTestHub(t, testConfig())
	open(h, "f")
	f, _ := h.Feed("f")
	l := f.Current()
	_, _, wake := l.Since(0)
	h.Abort()
	<-wake
	if got, want := l.State(), Aborted; got != want {
		t.Errorf("state = %v, want %v", got, want)
	}
	if err := h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after abort: %v", err)
	}
	if _, err := f.WaitSegment(context.Background(), l.N+1); !errors.Is(err, ErrClosed) {
		t.Errorf("wait after abort: %v", err)
	}
}

// TestRunRotates drives the real timers of Hub.Run in a synctest bubble.
func TestRunRotates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		h, err := New(cfg, SystemClock{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Loaded()
		open(h, "f")
		f, _ := h.Feed("f")
		first := f.Current()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()

		// Opened at the boundary, within segment n-1's allowance: the hub
		// opened n-1, and rotates at n's start plus the allowance.
		next, err := f.WaitSegment(ctx, first.N+1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := time.Now(), next.Start.Add(cfg.PartLateness); !got.Equal(want) {
			t.Errorf("rotated at %v, want %v", got, want)
		}
		if first.State() != Closed {
			t.Errorf("first segment state %v", first.State())
		}
		// An idle segment gets a keepalive every 3 s: at the end of part 2,
		// closed 3 s + L after the segment's start.
		time.Sleep(cfg.Keepalive - time.Millisecond)
		synctest.Wait()
		if got := next.FinishedParts(); got != 2 {
			t.Errorf("finished parts = %d, want 2", got)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if !strings.HasSuffix(string(next.Bytes()), ": keepalive\n\n") {
			t.Errorf("no keepalive: %q", next.Bytes())
		}
		if got := next.FinishedParts(); got != 3 {
			t.Errorf("finished parts = %d, want 3", got)
		}
		cancel()
		<-done
	})
}

// TestConfigLateness: the allowance is 0–5 s for operators, and less than
// half a segment for any configuration; errors name the variable.
func TestConfigLateness(t *testing.T) {
	for _, tc := range []struct {
		lateness time.Duration
		ok       bool
	}{{0, true}, {250 * time.Millisecond, true}, {5 * time.Second, true}, {5*time.Second + 1, false}, {-time.Millisecond, false}} {
		c := Defaults()
		c.PartLateness = tc.lateness
		if err := c.Validate(); (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "MARQUEE_PART_LATENESS")) {
			t.Errorf("PartLateness %v: Validate() = %v, want ok %v", tc.lateness, err, tc.ok)
		}
	}
	c := testConfig()
	c.PartLateness = c.SegmentLength / 2
	if _, err := New(c, nil, nil); err == nil || !strings.Contains(err.Error(), "MARQUEE_PART_LATENESS") {
		t.Errorf("half a segment: New() = %v", err)
	}
	if got, want := Defaults().PartLateness, 250*time.Millisecond; got != want {
		t.Errorf("default = %v, want %v", got, want)
	}
}

func TestURLPrefixValidated(t *testing.T) {
	for _, p := range []string{"/v1/feeds", "/live/v1/feeds", "/a"} {
		c := testConfig()
		c.URLPrefix = p
		if err := c.check(); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	for _, p := range []string{"v1/feeds", "/v1/feeds/", "//x", "/a/../b", "/a b", "/\xff", `/a"b`, "/a%31"} {
		c := testConfig()
		c.URLPrefix = p
		if err := c.check(); err == nil || !strings.Contains(err.Error(), "MARQUEE_URL_PREFIX") {
			t.Errorf("%q: err = %v", p, err)
		}
	}
}
