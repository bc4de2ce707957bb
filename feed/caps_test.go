package feed

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/segmenter"
)

// logBuffer collects log lines for a test to look at.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func newHub(t *testing.T, mod func(*segmenter.Config)) *segmenter.Hub {
	t.Helper()
	cfg := segmenter.Defaults()
	if mod != nil {
		mod(&cfg)
	}
	h, err := segmenter.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Abort)
	return h
}

// TestByteCapsCounted runs a core NATS source into a real hub with byte
// caps: refusals are counted as too_many_bytes and logged naming the feed
// and the cap, at a limited rate; shrinking is accepted; a delete for a
// feed that does not exist is counted as no_feed.
func TestByteCapsCounted(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	cfg.JetStream = false
	m, _ := newTestMetrics(t)
	hub := newHub(t, func(c *segmenter.Config) { c.MaxFeedBytes, c.MaxStateBytes = 100, 150 })
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := NewCoreSource(cfg, connect(t, cfg, m), hub, log, m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "subscribed", func() bool { return src.Status().Ready() })

	pub := connect(t, cfg, nil)
	send := func(subject, body string) {
		t.Helper()
		var data []byte
		if body != "" {
			data = []byte(body)
		}
		if err := pub.Publish(subject, data); err != nil {
			t.Fatal(err)
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	value := func(n int) string { return `{"v":"` + strings.Repeat("x", n-8) + `"}` } // n bytes
	keys := func(feed string) int {
		f, ok := hub.Feed(feed)
		if !ok {
			return -1
		}
		return f.Keys()
	}

	send("feeds.a.k1", value(98)) // 100: the cap exactly
	waitFor(t, "first key", func() bool { return keys("a") == 1 })
	send("feeds.a.k2", `{}`) // 104
	send("feeds.a.k3", `{}`)
	send("feeds.b.k", value(99)) // 100 for b, 200 in all
	send("feeds.a.k1", `{ "v" : 1 }`)
	waitFor(t, "the shrink", func() bool {
		f, _ := hub.Feed("a")
		return f.StateBytes() == 2+7
	})
	if got := testutil.ToFloat64(m.rejected[ReasonTooManyBytes]); got != 3 {
		t.Errorf("rejected{too_many_bytes} = %v, want 3", got)
	}
	if got, want := keys("b"), -1; got != want {
		t.Errorf("feed b: %d keys, want none made", got)
	}
	warned := logs.lines("too_many_bytes")
	if len(warned) != 2 { // one per cap; the second refusal by the feed cap is suppressed
		t.Fatalf("too_many_bytes lines = %q, want one per cap", warned)
	}
	for i, c := range []string{"cap=MARQUEE_MAX_FEED_BYTES", "cap=MARQUEE_MAX_STATE_BYTES"} {
		if !strings.Contains(warned[i], "level=WARN") || !strings.Contains(warned[i], c) ||
			!strings.Contains(warned[i], "feed="+[]string{"a", "b"}[i]) {
			t.Errorf("line %q does not warn naming %s and the feed", warned[i], c)
		}
	}
	if got := hub.Stats().StateBytes; got != 9 {
		t.Errorf("StateBytes = %d, want 9", got)
	}

	send("feeds.nothere.k", "")
	// The refusal is counted, then logged: wait for both.
	waitFor(t, "no_feed counted and logged", func() bool {
		return testutil.ToFloat64(m.rejected[ReasonNoFeed]) == 1 && len(logs.lines("no_feed")) > 0
	})
	if _, ok := hub.Feed("nothere"); ok {
		t.Error("a delete made a feed")
	}
	if lines := logs.lines("no_feed"); len(lines) != 1 || !strings.Contains(lines[0], "level=DEBUG") {
		t.Errorf("no_feed lines = %q, want one at debug level", lines)
	}
}

// TestAcceptedSeriesPruned: feeds the hub evicted lose their accepted
// series at once (Hub.OnRemove tells Metrics.FeedRemoved), so that feeds
// coming and going do not grow the metric; a feed that comes back counts
// from zero.
func TestAcceptedSeriesPruned(t *testing.T) {
	hub := newHub(t, func(c *segmenter.Config) {
		c.MaxFeeds = 2
		c.FeedIdleEvict = time.Minute
	})
	hub.Loaded()
	m, _ := newTestMetrics(t)
	hub.OnRemove(m.FeedRemoved)
	p := newProcessor(DefaultConfig(), hub, testLogger(t), m)
	t0 := time.Unix(1000, 0)
	seq := uint64(0)
	send := func(feed string, at time.Duration) {
		t.Helper()
		seq++
		p.handle("feeds."+feed+".k", []byte(`{}`), seq, t0.Add(at))
	}
	const n = 200
	for i := range n {
		send(fmt.Sprintf("f%d", i), time.Duration(i)*time.Hour)
	}
	send("f199", n*time.Hour)
	if st := hub.Stats(); st.FeedsEvicted != n-2 {
		t.Fatalf("evicted %d feeds, want %d", st.FeedsEvicted, n-2)
	}
	if got := testutil.CollectAndCount(m.accepted); got != 2 {
		t.Errorf("%d accepted series for 2 feeds", got)
	}
	want := map[string]float64{"f198": 1, "f199": 2}
	for _, name := range hub.Feeds() {
		if got := testutil.ToFloat64(m.accepted.WithLabelValues(name)); got != want[name] {
			t.Errorf("accepted{%s} = %v, want %v", name, got, want[name])
		}
	}
	send("f0", (n+1)*time.Hour) // evicts f198
	if got := testutil.CollectAndCount(m.accepted); got != 2 {
		t.Errorf("%d accepted series for 2 feeds", got)
	}
	if got := testutil.ToFloat64(m.accepted.WithLabelValues("f0")); got != 1 {
		t.Errorf("accepted{f0} = %v after it came back, want 1", got)
	}
}

// TestAcceptedNoSeriesForGoneFeed: a message counted after the hub removed
// its feed (the look-up found the feed, the hub removed it before the
// series was made) makes no series for the dead feed.
func TestAcceptedNoSeriesForGoneFeed(t *testing.T) {
	hub := newHub(t, func(c *segmenter.Config) { c.MaxFeeds = 1 })
	hub.Loaded()
	m, _ := newTestMetrics(t)
	hub.OnRemove(m.FeedRemoved)
	p := newProcessor(DefaultConfig(), hub, testLogger(t), m)
	t0 := time.Unix(1000, 0)
	p.handle("feeds.junk.k", []byte(`{}`), 1, t0)
	f, _ := hub.Feed("junk")
	p.handle("feeds.junk.k", nil, 2, t0)
	p.handle("feeds.other.k", []byte(`{}`), 3, t0) // the empty junk gives its place up
	if !f.Gone() {
		t.Fatal("junk not removed")
	}
	m.accept("junk", func(string) (*segmenter.Feed, bool) { return f, true })
	if got := testutil.CollectAndCount(m.accepted); got != 1 {
		t.Errorf("%d accepted series, want 1 (other)", got)
	}
}
