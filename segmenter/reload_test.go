package segmenter

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"marquee/sse"
	"marquee/wire"
)

// chainCheck walks events as a client does and checks that every update's
// prev is exactly the sequence held (the last snapshot's or update's).
type chainCheck struct {
	t       *testing.T
	held    uint64
	started bool
	updates int
}

func (c *chainCheck) events(where string, evs []sse.Event) {
	c.t.Helper()
	for _, ev := range evs {
		switch ev.Type {
		case wire.EventSnapshot:
			var s wire.Snapshot
			if err := json.Unmarshal(ev.Data, &s); err != nil {
				c.t.Fatal(err)
			}
			if ev.ID != strconv.FormatUint(s.Seq, 10) {
				c.t.Errorf("%s: snapshot id %s, seq %d", where, ev.ID, s.Seq)
			}
			c.held, c.started = s.Seq, true
		case wire.EventUpdate:
			var u wire.Update
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				c.t.Fatal(err)
			}
			if c.started && u.Prev != c.held {
				c.t.Errorf("%s: update %d has prev %d, client holds %d", where, u.Seq, u.Prev, c.held)
			}
			c.held, c.started = u.Seq, true
			c.updates++
		}
	}
}

// TestPrevChain: every update's prev is the sequence a client holds after
// the frames before it, across segments, deletes (of absent keys too, which
// now write a frame), refused messages and redeliveries (which write none),
// and a reload with restarted sequences.
func TestPrevChain(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeys = 3
	cfg.Retention = time.Hour
	h, clk, f, _ := rotated(t, cfg, "f")
	seq := uint64(100)
	apply := func(key, value string, wantErr error) {
		t.Helper()
		clk.Set(clk.Now().Add(700 * time.Millisecond))
		s := seq + 1 // refused: the next sequence is not applied
		switch wantErr {
		case nil:
			seq++
		case ErrDuplicate:
			s = seq
		}
		err := h.Apply("f", Update{Key: key, Value: val(value), Seq: s, Time: clk.Now()})
		if !errors.Is(err, wantErr) {
			t.Fatalf("apply %s seq %d: %v, want %v", key, s, err, wantErr)
		}
	}
	apply("a", `{"v":1}`, nil)
	apply("b", `{"v":1}`, nil)
	apply("nope", "", nil) // delete of an absent key: a frame
	apply("a", "", nil)
	apply("a", "", nil) // absent again
	apply("b", `{"v":2}`, ErrDuplicate)
	apply("c", `{}`, nil)
	apply("d", `{}`, nil)
	apply("e", `{}`, ErrTooManyKeys)
	for range 30 { // into segments 101 and 102
		apply("b", `{"v":3}`, nil)
	}
	// The delete of an absent key is in the log, value null.
	l100, _ := f.Segment(100)
	found := false
	for _, ev := range decodeAll(t, l100.Bytes()) {
		if ev.ID == "103" && ev.Type == wire.EventUpdate && string(ev.Data) == `{"key":"nope","seq":103,"prev":102,"time":1002350,"value":null}` {
			found = true
		}
	}
	if !found {
		t.Errorf("no delete frame for the absent key in %q", l100.Bytes())
	}

	// A reload with restarted sequences: the chain restarts at the
	// snapshot it writes into the open segment.
	h.Reload()
	for i, k := range []string{"x", "y"} {
		h.Apply("f", Update{Key: k, Value: val(`{}`), Seq: uint64(i + 1), Time: clk.Now()})
	}
	h.Loaded()
	seq = 2
	apply("x", `{"v":9}`, nil)
	apply("zz", "", nil)
	clk.Set(clk.Now().Add(10 * time.Second))
	h.Tick(clk.Now())

	c := &chainCheck{t: t}
	last := f.Current().N
	for n := int64(100); n < last; n++ {
		l, _ := f.Segment(n)
		if l.State() != Closed {
			t.Fatalf("segment %d %v", n, l.State())
		}
		c.events("segment "+strconv.FormatInt(n, 10), decodeAll(t, l.Bytes()))
	}
	if c.updates != 39 || c.held != 4 {
		t.Errorf("walked %d updates to seq %d, want 39 to 4", c.updates, c.held)
	}
	// Each segment alone is a chain from its snapshot too.
	for n := int64(101); n < last; n++ {
		l, _ := f.Segment(n)
		(&chainCheck{t: t}).events("alone "+strconv.FormatInt(n, 10), decodeAll(t, l.Bytes()))
	}
	// And direct mode's history after the reload.
	out, _, ok, _, _ := f.DirectSince(2, nil)
	if !ok {
		t.Fatal("direct since 2 not resumable")
	}
	(&chainCheck{t: t, held: 2, started: true}).events("direct", decodeAll(t, out))
}

// TestReload: after Reload, applies fold into fresh state (restarted, lower
// sequences accepted) while the open segment keeps serving and rotating the
// old one; Loaded swaps it in for every feed, writes a snapshot into every
// open segment at once with the new sequence, restarts the direct history
// and counts the reload. Reload during a reload starts over; Loaded with
// nothing to end does nothing.
func TestReload(t *testing.T) {
	cfg := testConfig()
	cfg.Retention = time.Hour
	h, clk, a, la := rotated(t, cfg, "a")
	h.Apply("a", Update{Key: "x", Value: val(`{"v":"old"}`), Seq: 499, Time: clk.Now()})
	h.Apply("a", Update{Key: "y", Value: val(`{"v":"old"}`), Seq: 500, Time: clk.Now()})
	h.Apply("b", Update{Key: "k", Value: val(`{}`), Seq: 10, Time: clk.Now()})
	b, _ := h.Feed("b")
	lb := b.Current()
	_, _, _, directWake, _ := a.DirectSince(500, nil)

	h.Reload()
	h.Apply("a", Update{Key: "x", Value: val(`{"v":"stale"}`), Seq: 7, Time: clk.Now()})
	h.Reload() // the replay starts over: what it staged is dropped
	for i, k := range []string{"x", "z"} {
		if err := h.Apply("a", Update{Key: k, Value: val(`{"v":"new"}`), Seq: uint64(i + 1), Time: clk.Now()}); err != nil {
			t.Fatalf("restarted sequence %d: %v", i+1, err)
		}
	}
	if err := h.Apply("a", Update{Key: "z", Value: val(`{}`), Seq: 2, Time: clk.Now()}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate within the reload: %v", err)
	}
	if err := h.Apply("c", Update{Key: "k", Value: val(`{}`), Seq: 3, Time: clk.Now()}); err != nil {
		t.Fatalf("feed created during a reload: %v", err)
	}
	// Meanwhile the open segments serve the old state, and rotate.
	before := la.Len()
	if a.Seq() != 500 || a.Keys() != 2 {
		t.Errorf("during reload: seq %d keys %d, want the old 500 and 2", a.Seq(), a.Keys())
	}
	clk.Set(time.Unix(1010, 0).Add(cfg.PartLateness))
	h.Tick(clk.Now())
	if la.State() != Closed || la.Len() <= before {
		t.Fatalf("segment 100 did not rotate during the reload")
	}
	la = a.Current()
	evs := decodeAll(t, la.Bytes())
	if la.N != 101 || len(evs) != 1 || evs[0].ID != "500" {
		t.Fatalf("segment 101 during reload: %+v", evs)
	}

	clk.Set(clk.Now().Add(2 * time.Second))
	h.Loaded()
	if got := h.Stats().Reloads; got != 1 {
		t.Errorf("Reloads = %d, want 1", got)
	}
	select {
	case <-directWake:
	default:
		t.Error("direct viewers not woken by the reload")
	}
	check := func(l *Log, id string, entries string) {
		t.Helper()
		evs := decodeAll(t, l.Bytes())
		ev := evs[len(evs)-1]
		var s wire.Snapshot
		if err := json.Unmarshal(ev.Data, &s); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(s.Entries)
		if ev.Type != wire.EventSnapshot || ev.ID != id || string(got) != entries || s.Segment != l.N || s.Time != l.Start.UnixMilli() {
			t.Errorf("segment %d of %s ends with %s %s %s, want snapshot %s %s", l.N, l.Feed, ev.Type, ev.ID, ev.Data, id, entries)
		}
	}
	check(la, "2", `{"x":{"v":"new"},"z":{"v":"new"}}`)
	check(b.Current(), "0", `{}`) // absent from the replay: empty
	c, _ := h.Feed("c")
	check(c.Current(), "3", `{"k":{}}`)
	if lb.State() != Closed || b.Current().N != 101 {
		t.Errorf("feed b: segment %d", b.Current().N)
	}
	// The reload snapshot is in the part open now (2.25 s − L: part 2).
	if p, ready, _, _ := la.Part(2); ready || p != nil {
		t.Errorf("part 2 finished already")
	}
	clk.Set(time.Unix(1013, 250_000_000))
	h.Tick(clk.Now())
	if p, _, _, _ := la.Part(2); len(decodeAll(t, p)) != 1 {
		t.Errorf("part 2 = %q, want the reload snapshot", p)
	}

	// Direct mode: ids of the old numbering, and ids below the new floor,
	// get a snapshot; the new sequence resumes.
	for _, after := range []uint64{500, 499, 1} {
		if _, _, ok, _, _ := a.DirectSince(after, nil); ok {
			t.Errorf("direct since %d resumed across the reload", after)
		}
	}
	if out, last, ok, _, _ := a.DirectSince(2, nil); !ok || last != 2 || len(out) != 0 {
		t.Errorf("direct since 2: ok %v last %d %q", ok, last, out)
	}
	if frame, seq := a.SnapshotFrame(clk.Now()); seq != 2 || len(decodeAll(t, frame)) != 1 {
		t.Errorf("direct snapshot at %d", seq)
	}
	if err := h.Apply("a", Update{Key: "z", Value: val(`{}`), Seq: 2, Time: clk.Now()}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("after reload, seq 2: %v", err)
	}
	if err := h.Apply("a", Update{Key: "z", Value: val(`{}`), Seq: 3, Time: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if out, last, ok, _, _ := a.DirectSince(2, nil); !ok || last != 3 || len(decodeAll(t, out)) != 1 {
		t.Errorf("direct since 2 after an update: ok %v last %d", ok, last)
	}

	n := la.Len()
	h.Loaded() // nothing to end
	if la.Len() != n || h.Stats().Reloads != 1 {
		t.Errorf("a second Loaded wrote or counted")
	}
}

// TestReloadWhileLoading: a Reload before the first Loaded restarts the
// replay; the first segments open with what it rebuilt.
func TestReloadWhileLoading(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1003, 0)}
	h, err := New(testConfig(), clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Apply("f", Update{Key: "old", Value: val(`{}`), Seq: 900, Time: clk.Now()})
	h.Reload()
	h.Apply("f", Update{Key: "new", Value: val(`{}`), Seq: 4, Time: clk.Now()})
	if h.Live() {
		t.Fatal("live before Loaded")
	}
	h.Loaded()
	f, _ := h.Feed("f")
	evs := decodeAll(t, f.Current().Bytes())
	if len(evs) != 1 || evs[0].ID != "4" || f.Keys() != 1 || !h.Live() || h.Stats().Reloads != 1 {
		t.Errorf("opened with %+v, keys %d, live %v", evs, f.Keys(), h.Live())
	}
	select {
	case <-h.LoadedC():
	default:
		t.Error("LoadedC not closed")
	}
}
