package core_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"marquee/internal/app"
	"marquee/internal/testenv"
)

// feedSeries returns every series in o's registry labelled feed=name, as
// name{labels} value, sorted, and the sum of the values of metric's.
func feedSeries(t *testing.T, o *testenv.Origin, name, metric string) ([]string, float64) {
	t.Helper()
	mfs, err := o.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	var sum float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			mine := false
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
				mine = mine || lp.GetName() == "feed" && lp.GetValue() == name
			}
			if !mine {
				continue
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(labels, ","), v))
			if mf.GetName() == metric {
				sum += v
			}
		}
	}
	slices.Sort(out)
	return out, sum
}

// TestRemovedFeedSeries: the series labelled with a feed (messages
// accepted, segment and part responses, state bytes) go when the hub
// removes the feed, so that short-lived feed names do not grow /metrics
// without bound; a live feed keeps its series and counts; a feed that
// comes back under the same name starts from fresh series. Feeds are
// removed the way that needs no clock: with MARQUEE_MAX_FEEDS=2, an empty
// feed gives its place to a new one at once (counted as expired).
func TestRemovedFeedSeries(t *testing.T) {
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{Config: func(c *app.Config) { c.Segmenter.MaxFeeds = 2 }})
	const accepted, segments = "marquee_feed_messages_accepted_total", "marquee_segment_responses_total"

	waitFeed := func(name string, want bool) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			if _, ok := o.Hub.Feed(name); ok != want {
				return fmt.Errorf("feed %s exists: %v, want %v", name, ok, want)
			}
			return nil
		})
	}
	waitAccepted := func(name string, want float64) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			if _, got := feedSeries(t, o, name, accepted); got != want {
				return fmt.Errorf("%s{feed=%s} = %v, want %v", accepted, name, got, want)
			}
			return nil
		})
	}
	// request asks for the feed's descriptor (which makes its series) and
	// HEADs its current segment (one segment response).
	request := func(name string) {
		t.Helper()
		d := o.Descriptor(name)
		req, _ := http.NewRequest(http.MethodHead, o.URL+d.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD %s: %d", d.URL, resp.StatusCode)
		}
	}

	n.Publish("feeds.live.k", `{"v":1}`)
	n.Publish("feeds.junk.k", `{"v":1}`)
	n.Publish("feeds.junk.k", "") // junk is empty: it gives its place up to the next new feed
	waitAccepted("live", 1)
	waitAccepted("junk", 2)
	request("live")
	request("junk")
	if series, got := feedSeries(t, o, "junk", segments); got != 1 || len(series) < 9 {
		// 3 segment kinds, 2+2 part kinds, accepted, state bytes.
		t.Fatalf("junk before removal: %s sum %v, series %q", segments, got, series)
	}
	liveBefore, _ := feedSeries(t, o, "live", "")

	n.Publish("feeds.other.k", `{"v":1}`) // takes junk's place
	waitFeed("junk", false)
	waitAccepted("other", 1)
	if series, _ := feedSeries(t, o, "junk", ""); len(series) != 0 {
		t.Errorf("series of the removed feed junk remain: %q", series)
	}
	if got := o.Metric("marquee_feeds_expired_total", nil); got < 1 {
		t.Errorf("marquee_feeds_expired_total = %v, want at least 1", got)
	}
	if liveAfter, _ := feedSeries(t, o, "live", ""); !slices.Equal(liveAfter, liveBefore) {
		t.Errorf("the live feed's series changed when junk went:\nbefore %q\nafter  %q", liveBefore, liveAfter)
	}

	n.Publish("feeds.other.k", "")       // other gives its place up
	n.Publish("feeds.junk.k", `{"v":2}`) // junk comes back
	waitFeed("junk", true)
	waitAccepted("junk", 1) // not 3: the old count went with the old feed
	if series, _ := feedSeries(t, o, "other", ""); len(series) != 0 {
		t.Errorf("series of the removed feed other remain: %q", series)
	}
	if _, got := feedSeries(t, o, "junk", segments); got != 0 {
		t.Errorf("junk came back with %s %v, want 0", segments, got)
	}
	request("junk")
	if _, got := feedSeries(t, o, "junk", segments); got != 1 {
		t.Errorf("junk after one request: %s %v, want 1", segments, got)
	}
	if _, got := feedSeries(t, o, "live", segments); got != 1 {
		t.Errorf("live: %s %v, want 1", segments, got)
	}
	if _, got := feedSeries(t, o, "live", accepted); got != 1 {
		t.Errorf("live: %s %v, want 1", accepted, got)
	}
}
