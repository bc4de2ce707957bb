package origin

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/segmenter"
)

// TestFeedSeriesFollowRemoval: a feed's series are made once, counted, and
// deleted by FeedRemoved; a request that resolved the feed just before the
// hub removed it makes none again; a feed of the same name made later
// starts at zero.
func TestFeedSeriesFollowRemoval(t *testing.T) {
	cfg := testSegmenter()
	cfg.MaxFeeds = 1
	hub, err := segmenter.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.Loaded()
	m := NewMetrics(prometheus.NewRegistry())
	hub.OnRemove(m.FeedRemoved)
	seq := uint64(0)
	apply := func(feed, value string) {
		t.Helper()
		seq++
		var v []byte
		if value != "" {
			v = []byte(value)
		}
		if err := hub.Apply(feed, segmenter.Update{Key: "k", Value: v, Seq: seq, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		return testutil.CollectAndCount(m.segmentStarted) + testutil.CollectAndCount(m.partResponses) + testutil.CollectAndCount(m.partHeld)
	}

	apply("junk", `{}`)
	old, _ := hub.Feed("junk")
	m.feedSeen(old)
	m.segmentResponse(old, segmentLive)
	m.partResponse(old, true, true)
	if got := count(); got != 7 {
		t.Fatalf("%d series for one feed, want 7", got)
	}
	if got := counter(m.partHeld.WithLabelValues("junk", "upto")); got != 1 {
		t.Errorf("held upto = %v", got)
	}

	apply("junk", "")
	apply("other", `{}`) // the empty junk gives its place up
	if !old.Gone() {
		t.Fatal("junk not removed")
	}
	if got := count(); got != 0 {
		t.Errorf("%d series after junk was removed, want 0", got)
	}
	m.feedSeen(old) // late requests of the removed feed
	m.segmentResponse(old, segmentFinished)
	m.partResponse(old, false, false)
	if got := count(); got != 0 {
		t.Errorf("%d series after late requests of the removed junk, want 0", got)
	}

	apply("other", "")
	apply("junk", `{}`) // back, as a new feed
	f, _ := hub.Feed("junk")
	m.segmentResponse(f, segmentLive)
	if got := counter(m.segmentStarted.WithLabelValues("junk", "live")); got != 1 {
		t.Errorf("junk live = %v after it came back, want 1", got)
	}
	if got := count(); got != 7 {
		t.Errorf("%d series, want 7", got)
	}
}
