package origin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"marquee/segmenter"
)

// TestRemovedFeed: when the hub removes a feed (here: empty for the
// retention plus a segment), its viewers end as at shutdown, never with a
// clean end an edge could cache: the open segment's stream is aborted, a
// held part answers 503, direct viewers are closed; then its URLs answer
// 404, not cacheable, like any unknown feed.
func TestRemovedFeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter()) // D 10 s, retention 20 s
		apply := func(value string) {
			t.Helper()
			b.seq++
			var v json.RawMessage
			if value != "" {
				v = json.RawMessage(value)
			}
			if err := b.hub.Apply("junk", segmenter.Update{Key: "k", Value: v, Seq: b.seq, Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		path := func(i int64, rest string) string {
			return fmt.Sprintf("/v1/feeds/junk/segments/%d%s", b.n0+i, rest)
		}
		b.sleepUntil(100 * time.Millisecond)
		apply(`{"v":1}`)
		apply("") // empty from t0+100ms: removed at the first tick from t0+30.1s
		b.sleepUntil(time.Second)
		direct := b.get("/v1/feeds/junk/events")
		b.want(direct, "direct", http.StatusOK, time.Second)

		b.sleepUntil(30500 * time.Millisecond)
		stream := b.get(path(3, ""))
		b.want(stream, "stream of the open segment", http.StatusOK, 30500*time.Millisecond)
		part := b.get(path(3, "/parts/1"))
		b.wantHeld(part, "part 1")

		b.sleepUntil(31 * time.Second)
		if _, ok := b.hub.Feed("junk"); ok {
			t.Fatal("feed not removed")
		}
		b.wantEnded(stream, "stream", 31*time.Second)
		if aborted, _ := stream.outcome(); !aborted {
			t.Error("stream of the removed feed's open segment ended cleanly, want aborted")
		}
		if body := stream.body(); strings.Contains(body, "event: next") {
			t.Errorf("stream has a next event: %q", body)
		}
		b.want(part, "held part", http.StatusServiceUnavailable, 31*time.Second)
		if got := part.head("Cache-Control"); got != "no-store" {
			t.Errorf("held part: Cache-Control %q", got)
		}
		b.wantEnded(direct, "direct", 31*time.Second)
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeDirect, reasonAborted)); got != 1 {
			t.Errorf("direct closed aborted = %v, want 1", got)
		}

		for _, p := range []string{"/v1/feeds/junk", "/v1/feeds/junk/snapshot", "/v1/feeds/junk/events", path(2, ""), path(3, "/parts/0")} {
			x := b.get(p)
			b.want(x, p, http.StatusNotFound, 31*time.Second)
			if got := x.head("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q", p, got)
			}
		}
		list := b.get("/v1/feeds")
		if body := list.body(); strings.Contains(body, "junk") || !strings.Contains(body, "prices") {
			t.Errorf("feed list %s", body)
		}
		if st := b.hub.Stats(); st.FeedsExpired != 1 {
			t.Errorf("FeedsExpired = %d", st.FeedsExpired)
		}
	})
}
