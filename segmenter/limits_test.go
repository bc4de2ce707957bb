package segmenter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sized returns a JSON object value of exactly n bytes (n >= 8).
func sized(n int) string { return `{"v":"` + strings.Repeat("x", n-8) + `"}` }

// capsHub is a loaded test hub with byte caps of 100 per feed and 150 in
// total.
func capsHub(t *testing.T, mod func(*Config)) (*Hub, *fakeClock) {
	t.Helper()
	cfg := testConfig()
	cfg.MaxFeedBytes, cfg.MaxStateBytes = 100, 150
	cfg.FeedIdleEvict = 0
	if mod != nil {
		mod(&cfg)
	}
	return newTestHub(t, cfg)
}

// applier applies updates with increasing sequences at the hub clock's time.
type applier struct {
	t   *testing.T
	h   *Hub
	clk *fakeClock
	seq uint64
}

func (a *applier) apply(feed, key, value string) error {
	a.t.Helper()
	return a.applyAt(feed, key, value, a.clk.Now())
}

func (a *applier) applyAt(feed, key, value string, ts time.Time) error {
	a.t.Helper()
	a.seq++
	var v []byte
	if value != "" {
		v = val(value)
	}
	return a.h.Apply(feed, Update{Key: key, Value: v, Seq: a.seq, Time: ts})
}

func (a *applier) must(feed, key, value string) {
	a.t.Helper()
	if err := a.apply(feed, key, value); err != nil {
		a.t.Fatalf("%s.%s = %.20s: %v", feed, key, value, err)
	}
}

// wantBytesErr checks that err is a refusal by cap v with would bytes.
func wantBytesErr(t *testing.T, err error, v string, would int64) {
	t.Helper()
	var be *BytesError
	if !errors.Is(err, ErrTooManyBytes) || !errors.As(err, &be) || be.Var != v || be.Would != would {
		t.Fatalf("err = %v, want %s refusing %d bytes", err, v, would)
	}
	if !strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), be.Feed) {
		t.Errorf("message %q names neither the cap nor the feed", err)
	}
}

// checkTotals checks Stats.StateBytes against the feeds' own counts and
// what their state holds.
func checkTotals(t *testing.T, h *Hub, want int64) {
	t.Helper()
	var sum int64
	for _, name := range h.Feeds() {
		f, _ := h.Feed(name)
		f.mu.Lock()
		var held int64
		for k, v := range f.entries {
			held += int64(len(k) + len(v))
		}
		got := f.bytes
		f.mu.Unlock()
		if got != held {
			t.Errorf("feed %s counts %d bytes, holds %d", name, got, held)
		}
		sum += held
	}
	if got := h.Stats().StateBytes; got != sum || got != want {
		t.Errorf("StateBytes = %d, feeds hold %d, want %d", got, sum, want)
	}
}

func TestByteCaps(t *testing.T) {
	h, clk := capsHub(t, nil)
	a := &applier{t: t, h: h, clk: clk}
	a.must("a", "k1", sized(98)) // 2 + 98: exactly the feed cap
	f, _ := h.Feed("a")
	if got := f.StateBytes(); got != 100 {
		t.Fatalf("StateBytes = %d, want 100", got)
	}
	seq, n := f.Seq(), f.Current().Len()
	wantBytesErr(t, a.apply("a", "k2", `{}`), varFeedBytes, 104)
	wantBytesErr(t, a.apply("a", "k1", sized(99)), varFeedBytes, 101)
	if f.Seq() != seq || f.Current().Len() != n || f.Keys() != 1 {
		t.Fatal("a refused update changed the feed")
	}
	a.must("a", "k1", sized(40+8)) // shrinks
	a.must("a", "k2", sized(48))   // 50 + 50: the cap again
	a.must("a", "k2", sized(48))   // same size at the cap
	a.must("a", "k1", "")          // delete
	a.must("a", "gone", "")        // delete of an absent key
	checkTotals(t, h, 50)

	// All feeds: 50 + 100 is the total cap.
	a.must("b", "k", sized(99))
	checkTotals(t, h, 150)
	wantBytesErr(t, a.apply("a", "k3", `{}`), varStateBytes, 154)
	// A new feed whose first update does not fit is not made.
	wantBytesErr(t, a.apply("c", "k", `{}`), varStateBytes, 153)
	wantBytesErr(t, a.apply("d", "k", sized(100)), varFeedBytes, 101)
	if got := h.Feeds(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("feeds = %v, want [a b]", got)
	}
	// Shrinking is always accepted, and frees room for others.
	a.must("b", "k", sized(90))
	a.must("a", "k3", `{}`)
	checkTotals(t, h, 145)
	a.must("b", "k", "")
	a.must("a", "k2", "")
	checkTotals(t, h, 4)
}

func TestByteCapsFollowReload(t *testing.T) {
	h, clk := capsHub(t, nil)
	a := &applier{t: t, h: h, clk: clk}
	a.must("a", "k", sized(99))
	a.must("b", "k", sized(39))
	checkTotals(t, h, 140)

	h.Reload()
	a.seq = 0 // sequences restart
	a.must("b", "k", sized(90))
	h.Reload() // starts over: what it staged no longer counts
	a.seq = 0
	a.must("b", "k", sized(99)) // 100: fits the empty staging total, not the live one
	if got := h.Stats().StateBytes; got != 140 {
		t.Errorf("during the reload StateBytes = %d, want the live 140", got)
	}
	wantBytesErr(t, a.apply("a", "k", sized(50)), varStateBytes, 151)
	a.must("c", "kk", sized(48)) // 50: the staging total exactly
	h.Loaded()
	checkTotals(t, h, 150)
	fa, _ := h.Feed("a")
	if fa.StateBytes() != 0 || fa.Keys() != 0 {
		t.Errorf("feed a after the reload: %d bytes, %d keys", fa.StateBytes(), fa.Keys())
	}
	// The live total goes on from the swapped one.
	wantBytesErr(t, a.apply("a", "k", `{}`), varStateBytes, 153)
	a.must("b", "k", "")
	a.must("a", "k", sized(98))
	checkTotals(t, h, 149)
}

func TestEmptyFeedExpires(t *testing.T) {
	h, clk := capsHub(t, nil) // D 10 s, retention 20 s: expiry 30 s
	a := &applier{t: t, h: h, clk: clk}
	open(h, "pinned") // Ensure: never expires
	a.must("junk", "k", `{}`)
	a.must("junk", "k2", `{}`)
	a.must("busy", "k", `{}`)
	f, _ := h.Feed("junk")
	t0 := clk.Now()
	a.must("junk", "k", "")
	clk.Set(t0.Add(5 * time.Second))
	a.must("junk", "k2", "") // empty from here
	emptied := clk.Now()
	waiter := make(chan error, 1)
	go func() { _, err := f.WaitSegment(context.Background(), 1<<40); waiter <- err }()

	clk.Set(emptied.Add(30*time.Second - time.Millisecond))
	h.Tick(clk.Now())
	if _, ok := h.Feed("junk"); !ok {
		t.Fatal("junk expired before 30 s")
	}
	l := f.Current()
	_, _, wake := l.Since(0)
	_, _, _, direct, _ := f.DirectSince(f.Seq(), nil)
	clk.Set(emptied.Add(30 * time.Second))
	h.Tick(clk.Now())
	if _, ok := h.Feed("junk"); ok {
		t.Fatal("junk not expired after 30 s")
	}
	if got, want := h.Feeds(), []string{"busy", "pinned"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	if st := h.Stats(); st.FeedsExpired != 1 || st.FeedsEvicted != 0 || st.Feeds != 2 || st.Aborted != 0 {
		t.Errorf("stats = %+v", st)
	}
	// Its viewers: the open segment is aborted (not ended with next),
	// waiters fail, direct viewers are closed.
	<-wake
	if l.State() != Aborted {
		t.Errorf("open segment %v, want aborted", l.State())
	}
	if err := <-waiter; !errors.Is(err, ErrClosed) {
		t.Errorf("WaitSegment = %v", err)
	}
	<-direct
	if _, _, _, _, closed := f.DirectSince(0, nil); !closed {
		t.Error("direct viewers not closed")
	}
	// A delete creates no feed; a set makes a new one.
	if err := a.apply("junk", "k", ""); !errors.Is(err, ErrUnknownFeed) {
		t.Errorf("delete in a removed feed: %v", err)
	}
	a.must("junk", "k", `{}`)
	if g, _ := h.Feed("junk"); g == f || g.Keys() != 1 {
		t.Errorf("the feed came back as the old one or without its key")
	}

	// A feed that gets a key again does not expire; pinned feeds never do.
	a.must("busy", "k", "")
	clk.Set(clk.Now().Add(29 * time.Second))
	a.must("busy", "k", `{}`)
	clk.Set(clk.Now().Add(time.Hour))
	h.Tick(clk.Now())
	if got, want := h.Feeds(), []string{"busy", "junk", "pinned"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
}

func TestNoExpiryDuringReload(t *testing.T) {
	h, clk := capsHub(t, nil)
	a := &applier{t: t, h: h, clk: clk}
	a.must("f", "k", `{}`)
	a.must("f", "k", "")
	h.Reload()
	a.seq = 0
	a.must("f", "k", `{}`) // the replay has it
	clk.Set(clk.Now().Add(time.Hour))
	h.Tick(clk.Now())
	h.Loaded()
	if f, ok := h.Feed("f"); !ok || f.Keys() != 1 {
		t.Fatal("feed expired during the reload that brought its key back")
	}
	// Emptied by a reload: it expires from the Loaded on.
	h.Reload()
	h.Loaded()
	clk.Set(clk.Now().Add(30 * time.Second))
	h.Tick(clk.Now())
	if _, ok := h.Feed("f"); ok {
		t.Fatal("feed emptied by a reload did not expire")
	}
}

// evictHub has room for two feeds, no byte caps to speak of, and evicts
// feeds idle for an hour.
func evictHub(t *testing.T, mod func(*Config)) (*Hub, *applier) {
	t.Helper()
	h, clk := capsHub(t, func(c *Config) {
		c.MaxFeeds = 2
		c.MaxFeedBytes, c.MaxStateBytes = 1<<20, 1<<20
		c.FeedIdleEvict = time.Hour
		if mod != nil {
			mod(c)
		}
	})
	return h, &applier{t: t, h: h, clk: clk}
}

func TestIdleEvictionAdmitsNewFeed(t *testing.T) {
	h, a := evictHub(t, nil)
	t0 := time.Unix(1000, 0)
	a.applyAt("junk1", "k", `{}`, t0)
	a.applyAt("junk2", "k", `{}`, t0.Add(time.Minute))
	a.applyAt("junk1", "k2", `{}`, t0.Add(time.Second)) // junk1's last update
	j1, _ := h.Feed("junk1")
	l := j1.Current()

	if err := a.applyAt("legit", "k", `{}`, t0.Add(time.Hour+time.Second-time.Millisecond)); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("nothing idle for an hour yet: %v", err)
	}
	if err := a.applyAt("legit", "k", `{}`, t0.Add(time.Hour+time.Second)); err != nil {
		t.Fatalf("junk1 idle for an hour: %v", err)
	}
	if got, want := h.Feeds(), []string{"junk2", "legit"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	if st := h.Stats(); st.FeedsEvicted != 1 || st.FeedsExpired != 0 || st.Feeds != 2 {
		t.Errorf("stats = %+v", st)
	}
	if l.State() != Aborted {
		t.Errorf("evicted feed's open segment %v, want aborted", l.State())
	}
	checkTotals(t, h, 6)
	// Eviction looks at message timestamps, not at the local clock.
	a.clk.Set(a.clk.Now().Add(10 * time.Hour))
	if err := a.applyAt("late", "k", `{}`, t0.Add(time.Hour+time.Minute-time.Millisecond)); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("junk2 idle for less than an hour by the stream: %v", err)
	}
}

func TestPinnedFeedsNeverEvicted(t *testing.T) {
	h, a := evictHub(t, nil)
	t0 := time.Unix(1000, 0)
	if err := h.Ensure("pinned"); err != nil {
		t.Fatal(err)
	}
	a.applyAt("pinned", "k", `{}`, t0) // the idlest
	a.applyAt("junk", "k", `{}`, t0.Add(time.Minute))
	if err := a.applyAt("new", "k", `{}`, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := h.Feeds(), []string{"new", "pinned"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	// Only the pinned feed is idle now: the next new feed is refused.
	if err := a.applyAt("other", "k", `{}`, t0.Add(2*time.Hour+time.Minute)); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("with only the pinned feed idle: %v", err)
	}
	// A pinned feed without keys holds its place too, and never expires.
	a.applyAt("pinned", "k", "", t0.Add(2*time.Hour))
	a.clk.Set(a.clk.Now().Add(time.Hour))
	h.Tick(a.clk.Now())
	if err := a.applyAt("other", "k", `{}`, t0.Add(2*time.Hour+30*time.Minute)); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("with the pinned feed empty: %v", err)
	}
	if _, ok := h.Feed("pinned"); !ok {
		t.Fatal("pinned feed removed")
	}
}

func TestEmptyFeedGivesPlaceAtOnce(t *testing.T) {
	h, a := evictHub(t, func(c *Config) { c.FeedIdleEvict = 0 })
	t0 := time.Unix(1000, 0)
	a.applyAt("full", "k", `{}`, t0)
	a.applyAt("empty", "k", `{}`, t0)
	a.applyAt("empty", "k", "", t0)
	if err := a.applyAt("new", "k", `{}`, t0); err != nil {
		t.Fatal(err)
	}
	if got, want := h.Feeds(), []string{"full", "new"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	if st := h.Stats(); st.FeedsExpired != 1 || st.FeedsEvicted != 0 {
		t.Errorf("stats = %+v", st)
	}
	// FeedIdleEvict 0: feeds with keys keep their places.
	if err := a.applyAt("more", "k", `{}`, t0.Add(1000*time.Hour)); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("eviction disabled: %v", err)
	}
}

func TestIdleEvictionForBytes(t *testing.T) {
	h, a := evictHub(t, func(c *Config) {
		c.MaxFeeds = 10
		c.MaxFeedBytes, c.MaxStateBytes = 100, 150
	})
	t0 := time.Unix(1000, 0)
	a.applyAt("old1", "k", sized(29), t0)                  // 30 bytes, the idlest
	a.applyAt("old2", "k", sized(39), t0.Add(time.Second)) // 40
	a.applyAt("old3", "k", sized(39), t0.Add(time.Minute)) // 40
	a.applyAt("grow", "k", sized(39), t0.Add(2*time.Hour)) // 40: total 150
	checkTotals(t, h, 150)
	// A new feed needing 50 bytes evicts as few idle feeds as free them,
	// the idlest first.
	if err := a.applyAt("new", "k", sized(49), t0.Add(time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, want := h.Feeds(), []string{"grow", "new", "old3"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	checkTotals(t, h, 130)
	// A feed that grows past the total evicts idle others, never itself.
	if err := a.applyAt("grow", "k", sized(79), t0.Add(2*time.Hour)); err != nil { // +40
		t.Fatal(err)
	}
	if got, want := h.Feeds(), []string{"grow", "new"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	checkTotals(t, h, 130)
	if st := h.Stats(); st.FeedsEvicted != 3 {
		t.Errorf("FeedsEvicted = %d, want 3", st.FeedsEvicted)
	}
	// When the idle feeds would not free enough, none is evicted.
	a.applyAt("grow", "k", sized(29), t0.Add(2*time.Hour)) // 30
	a.applyAt("new", "k", sized(99), t0.Add(4*time.Hour))  // 100: total 130
	wantBytesErr(t, a.applyAt("big", "k", sized(50), t0.Add(4*time.Hour)), varStateBytes, 181)
	if got, want := h.Feeds(), []string{"grow", "new"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	if err := a.applyAt("big", "k", sized(49), t0.Add(4*time.Hour)); err != nil { // 50: grow's 30 suffice
		t.Fatal(err)
	}
	if got, want := h.Feeds(), []string{"big", "new"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	checkTotals(t, h, 150)
}

// TestEvictionAgreesAcrossReplicas: two replicas whose clocks expired
// different empty feeds keep the same feeds with keys.
func TestEvictionAgreesAcrossReplicas(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var hubs []*Hub
	for i, wait := range []time.Duration{time.Minute, 0} {
		h, a := evictHub(t, func(c *Config) { c.MaxFeeds = 3 })
		a.applyAt("v", "k", `{"v":1}`, t0)
		a.applyAt("w", "k", `{"w":1}`, t0.Add(time.Minute))
		a.applyAt("e", "k", `{}`, t0.Add(time.Minute))
		a.applyAt("e", "k", "", t0.Add(time.Minute))
		a.clk.Set(a.clk.Now().Add(wait))
		h.Tick(a.clk.Now()) // replica 0 expires e
		if _, ok := h.Feed("e"); ok == (i == 0) {
			t.Fatalf("replica %d: e listed %v", i, ok)
		}
		for _, name := range []string{"n1", "n2"} {
			if err := a.applyAt(name, "k", `{}`, t0.Add(2*time.Hour)); err != nil {
				t.Fatalf("replica %d: %s: %v", i, name, err)
			}
		}
		hubs = append(hubs, h)
	}
	for i, h := range hubs {
		// n1 took e's place (or the free one), n2 evicted v, the idlest.
		if got, want := h.Feeds(), []string{"n1", "n2", "w"}; !slices.Equal(got, want) {
			t.Errorf("replica %d: feeds %v, want %v", i, got, want)
		}
		if st := h.Stats(); st.FeedsEvicted != 1 {
			t.Errorf("replica %d: evicted %d, want 1", i, st.FeedsEvicted)
		}
	}
}

// TestEvictionDuringReload: during a reload the caps look at what the
// replay rebuilt: a feed it has not mentioned yet is empty.
func TestEvictionDuringReload(t *testing.T) {
	h, a := evictHub(t, nil)
	t0 := time.Unix(1000, 0)
	a.applyAt("a", "k", `{}`, t0)
	a.applyAt("b", "k", `{}`, t0.Add(time.Minute))
	fa, _ := h.Feed("a")
	l := fa.Current()
	h.Reload()
	a.seq = 0
	a.applyAt("b", "k", `{"v":2}`, t0.Add(time.Minute))
	if err := a.applyAt("c", "k", `{}`, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	h.Loaded()
	if got, want := h.Feeds(), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	if l.State() != Aborted {
		t.Errorf("a's segment %v, want aborted", l.State())
	}
	checkTotals(t, h, 11)
	// The staged timestamps decide idleness.
	h.Reload()
	a.seq = 0
	a.applyAt("b", "k", `{}`, t0)
	a.applyAt("c", "k", `{}`, t0.Add(2*time.Hour))
	if err := a.applyAt("d", "k", `{}`, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h.Loaded()
	if got, want := h.Feeds(), []string{"c", "d"}; !slices.Equal(got, want) {
		t.Errorf("feeds = %v, want %v", got, want)
	}
	checkTotals(t, h, 6)
}

// TestCapsConcurrent: concurrent Applies, evictions and expiries keep the
// totals exact and the feeds within their cap.
func TestCapsConcurrent(t *testing.T) {
	h, clk := capsHub(t, func(c *Config) {
		c.MaxFeeds = 4
		c.MaxFeedBytes, c.MaxStateBytes = 200, 500
		c.FeedIdleEvict = time.Minute
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			h.Reload()
			time.Sleep(100 * time.Microsecond)
			h.Loaded()
		}
	})
	for w := range 4 {
		wg.Go(func() {
			for i := range 300 {
				feed := fmt.Sprintf("f%d", (i*7+w)%9)
				value := ""
				if i%5 != 0 {
					value = sized(8 + i%60)
				}
				h.Apply(feed, Update{Key: fmt.Sprintf("k%d", i%4), Value: val(value), Seq: uint64(i*4 + w + 1), Time: time.Unix(1000, 0).Add(time.Duration(i) * time.Minute)})
				if i%50 == 0 {
					h.Tick(clk.Now().Add(time.Duration(i) * time.Second))
				}
			}
		})
	}
	wg.Wait()
	if n := len(h.Feeds()); n > 4 {
		t.Errorf("%d feeds, cap 4", n)
	}
	var sum int64
	for _, name := range h.Feeds() {
		f, _ := h.Feed(name)
		sum += f.StateBytes()
	}
	checkTotals(t, h, sum)
	if st := h.Stats(); st.FeedsEvicted+st.FeedsExpired == 0 {
		t.Errorf("nothing evicted or expired: %+v", st)
	}
}

func TestConfigCaps(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string // "" = valid
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.MaxFeedBytes = 64<<10 - 1 }, "MARQUEE_MAX_FEED_BYTES"},
		{func(c *Config) { c.MaxFeedBytes = 1<<30 + 1 }, "MARQUEE_MAX_FEED_BYTES"},
		{func(c *Config) { c.MaxStateBytes = c.MaxFeedBytes - 1 }, "MARQUEE_MAX_STATE_BYTES"},
		{func(c *Config) { c.MaxStateBytes = 64<<30 + 1 }, "MARQUEE_MAX_STATE_BYTES"},
		{func(c *Config) { c.MaxFeedBytes, c.MaxStateBytes = 64<<10, 64<<10 }, ""},
		{func(c *Config) { c.FeedIdleEvict = 0 }, ""},
		{func(c *Config) { c.FeedIdleEvict = 59 * time.Second }, "MARQUEE_FEED_IDLE_EVICT"},
		{func(c *Config) { c.FeedIdleEvict = -time.Minute }, "MARQUEE_FEED_IDLE_EVICT"},
	} {
		c := Defaults()
		tc.mod(&c)
		err := c.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate() = %v, want %q", c, err, tc.want)
		}
	}
	for _, mod := range []func(*Config){
		func(c *Config) { c.MaxFeedBytes = 0 },
		func(c *Config) { c.MaxStateBytes = c.MaxFeedBytes - 1 },
		func(c *Config) { c.FeedIdleEvict = -1 },
	} {
		c := testConfig()
		mod(&c)
		if _, err := New(c, nil, nil); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

// TestOnRemove: the functions registered with OnRemove are told every
// removal (idle eviction, an empty feed giving its place up, expiry), once,
// with the feed already Gone; live feeds are never named, and a feed that
// comes back is a new Feed that is not Gone.
func TestOnRemove(t *testing.T) {
	h, a := evictHub(t, nil)
	var removed []string
	gone := map[string]bool{}
	held := map[string]*Feed{} // the feeds as a viewer resolved them
	h.OnRemove(func(name string) {
		removed = append(removed, name)
		gone[name] = held[name].Gone()
	})
	hold := func(name string) {
		t.Helper()
		f, ok := h.Feed(name)
		if !ok {
			t.Fatalf("no feed %s", name)
		}
		held[name] = f
	}
	want := func(names ...string) {
		t.Helper()
		if !slices.Equal(removed, names) {
			t.Fatalf("removed %v, want %v", removed, names)
		}
		for _, n := range names {
			if !gone[n] {
				t.Errorf("%s not Gone when OnRemove was told", n)
			}
		}
	}
	t0 := time.Unix(1000, 0)
	a.applyAt("junk1", "k", `{}`, t0)
	a.applyAt("junk2", "k", `{}`, t0.Add(time.Minute))
	hold("junk1")
	hold("junk2")
	want()

	a.applyAt("legit", "k", `{}`, t0.Add(time.Hour+time.Second)) // evicts junk1, idle for an hour
	want("junk1")
	a.applyAt("junk2", "k", "", t0.Add(time.Hour+2*time.Second))
	a.applyAt("other", "k", `{}`, t0.Add(time.Hour+3*time.Second)) // empty junk2 gives its place up
	want("junk1", "junk2")
	hold("other")
	a.applyAt("other", "k", "", t0.Add(time.Hour+4*time.Second))
	a.clk.Set(a.clk.Now().Add(h.cfg.emptyExpiry()))
	h.Tick(a.clk.Now()) // other expires
	want("junk1", "junk2", "other")

	if err := a.applyAt("junk1", "k", `{}`, t0.Add(time.Hour+5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f, _ := h.Feed("junk1"); f == held["junk1"] || f.Gone() {
		t.Errorf("junk1 came back as the old feed (%v) or Gone (%v)", f == held["junk1"], f.Gone())
	}
	if f, _ := h.Feed("legit"); f.Gone() {
		t.Error("legit is Gone")
	}
	want("junk1", "junk2", "other")
}
