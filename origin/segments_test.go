package origin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const keepalive = ": keepalive\n\n"

// TestEarlyHold: a request for the next segment up to EarlyHold before it
// starts is held and answered the instant the segment opens; earlier ones
// and the one after are 404 no-store. The segment in progress ends with its
// "next" event at the boundary.
func TestEarlyHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.EarlyHold = 5 * time.Second
		b := newBubble(t, cfg, testSegmenter())

		b.sleepUntil(time.Second)
		cur := b.get(b.segPath(0))
		b.want(cur, "current segment", http.StatusOK, time.Second)

		b.sleepUntil(5*time.Second - time.Millisecond) // 5.001 s before segment 1
		tooEarly := b.get(b.segPath(1))
		b.want(tooEarly, "next segment 5.001s early", http.StatusNotFound, 5*time.Second-time.Millisecond)
		if got := tooEarly.head("Cache-Control"); got != "no-store" {
			t.Errorf("too early: Cache-Control %q", got)
		}

		b.sleepUntil(5 * time.Second) // exactly EarlyHold before segment 1
		held := b.get(b.segPath(1))
		b.wantHeld(held, "next segment 5s early")
		later := b.get(b.segPath(2))
		b.want(later, "segment after next", http.StatusNotFound, 5*time.Second)

		b.sleepUntil(10*time.Second - time.Nanosecond)
		b.wantHeld(held, "next segment 1ns before it starts")
		if ended, _ := cur.ended(); ended {
			t.Errorf("current segment ended before its end")
		}

		b.sleepUntil(10 * time.Second)
		b.want(held, "held segment", http.StatusOK, 10*time.Second)
		if got, want := held.head("Cache-Control"), "public, max-age=0, s-maxage=20, no-transform"; got != want {
			t.Errorf("held: Cache-Control %q, want %q", got, want)
		}
		if got, want := held.head("Marquee-Segment"), fmt.Sprint(b.n0+1); got != want {
			t.Errorf("held: Marquee-Segment %q, want %q", got, want)
		}
		if w := held.log(); len(w) == 0 || !w[0].at.Equal(b.at(10*time.Second)) || !strings.HasPrefix(w[0].data, "retry: 3000\n") {
			t.Errorf("held: first write %v, want the segment's start at t0+10s", w)
		}

		b.wantEnded(cur, "current segment", 10*time.Second)
		next := fmt.Sprintf("event: next\ndata: {\"segment\":%d,\"url\":\"/v1/feeds/prices/segments/%d\"}\n\n", b.n0+1, b.n0+1)
		if aborted, _ := cur.outcome(); aborted || !strings.HasSuffix(cur.body(), next) {
			t.Errorf("current segment: aborted %v, body ends %q, want %q", aborted, tail(cur.body()), next)
		}
		m := b.s.m
		for kind, want := range map[string]float64{"live": 1, "held": 1, "finished": 0} {
			if got := counter(m.segmentStarted.WithLabelValues("prices", kind)); got != want {
				t.Errorf("segment responses %s = %v, want %v", kind, got, want)
			}
		}
		if got := counter(m.streamClosed.WithLabelValues(modeStream, reasonComplete)); got != 1 {
			t.Errorf("streams complete = %v, want 1", got)
		}
	})
}

// TestRetention: a closed segment is served whole (immutable) while it is
// retained, two segment lengths after its end; from the rotation after
// that it is 410 no-store.
func TestRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(40*time.Second - time.Nanosecond)
		old := b.get(b.segPath(0))
		b.want(old, "retained segment", http.StatusOK, 40*time.Second-time.Nanosecond)
		b.wantEnded(old, "retained segment", 40*time.Second-time.Nanosecond)
		if got, want := old.head("Cache-Control"), "public, max-age=86400, immutable, no-transform"; got != want {
			t.Errorf("retained: Cache-Control %q, want %q", got, want)
		}
		if body := old.body(); !strings.HasPrefix(body, "retry: 3000\n") || !strings.Contains(body, "event: next\n") {
			t.Errorf("retained: body %q is not a whole segment", body)
		}

		b.sleepUntil(40 * time.Second)
		gone := b.get(b.segPath(0))
		b.want(gone, "expired segment", http.StatusGone, 40*time.Second)
		if got := gone.head("Cache-Control"); got != "no-store" {
			t.Errorf("expired: Cache-Control %q", got)
		}
		if got := counter(b.s.m.segmentStarted.WithLabelValues("prices", "finished")); got != 1 {
			t.Errorf("finished responses = %v, want 1", got)
		}
		// Refused before it became a stream: outside the window.
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeStream, reasonRefused)); got != 0 {
			t.Errorf("refused streams = %v, want 0", got)
		}
		if got := counter(b.s.m.refused.WithLabelValues(refusedWindow)); got != 1 {
			t.Errorf("refused{window} = %v, want 1", got)
		}
	})
}

// TestStreamKeepalive: a viewer of an open segment gets each keepalive of
// the segment log when it is written (at the end of the first part that
// ends a second or more after the last write), each update at once, and the
// "next" event at the boundary, each in one write.
func TestStreamKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(500 * time.Millisecond)
		x := b.get(b.segPath(0))
		b.sleepUntil(2500 * time.Millisecond)
		b.update("MSFT", `{"p":2}`)
		synctest.Wait()
		b.sleepUntil(10 * time.Second)

		want := []struct {
			at   time.Duration
			data string // prefix
		}{
			{500 * time.Millisecond, "retry: 3000\n\nid: 1\nevent: snapshot\n"},
			{1 * time.Second, keepalive},
			{2 * time.Second, keepalive},
			{2500 * time.Millisecond, "id: 2\nevent: update\n"},
		}
		for s := 4 * time.Second; s < 10*time.Second; s += time.Second {
			want = append(want, struct {
				at   time.Duration
				data string
			}{s, keepalive})
		}
		want = append(want, struct {
			at   time.Duration
			data string
		}{10 * time.Second, "event: next\n"})
		got := x.log()
		if len(got) != len(want) {
			t.Fatalf("%d writes, want %d: %s", len(got), len(want), dump(b, got))
		}
		for i, w := range want {
			if !got[i].at.Equal(b.at(w.at)) || !strings.HasPrefix(got[i].data, w.data) {
				t.Errorf("write %d: t0+%v %q, want t0+%v %q…", i, got[i].at.Sub(b.t0), got[i].data, w.at, w.data)
			}
		}
		b.wantEnded(x, "segment", 10*time.Second)
	})
}

// TestCurrentSegmentWait: a request for the current segment before the
// segmenter opened it (here: a hub still loading) waits at most tickGrace
// and is then refused with 503; a drain ends that wait at once.
func TestCurrentSegmentWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.DrainDelay = 0
		cfg.EarlyHold = 10 * time.Second
		b := newLoadingBubble(t, cfg, testSegmenter())

		b.sleepUntil(time.Second)
		cur := b.get(b.segPath(0))
		b.wantHeld(cur, "current segment while loading")
		b.sleepUntil(3*time.Second - time.Nanosecond)
		b.wantHeld(cur, "current segment, 1ns before the bound")
		b.sleepUntil(3 * time.Second)
		b.want(cur, "current segment while loading", http.StatusServiceUnavailable, 3*time.Second)

		// Held early for the next segment that never opens: refused
		// tickGrace after its start.
		next := b.get(b.segPath(1))
		b.sleepUntil(12*time.Second - time.Nanosecond)
		b.wantHeld(next, "next segment while loading")
		b.sleepUntil(12 * time.Second)
		b.want(next, "next segment while loading", http.StatusServiceUnavailable, 12*time.Second)

		b.sleepUntil(13 * time.Second)
		waiting := b.get(b.segPath(1))
		b.wantHeld(waiting, "current segment while loading")
		b.sleepUntil(13500 * time.Millisecond)
		drained := make(chan error, 1)
		go func() { drained <- b.s.Drain(context.Background()) }()
		synctest.Wait()
		b.want(waiting, "current segment at drain", http.StatusServiceUnavailable, 13500*time.Millisecond)
		if err := <-drained; err != nil {
			t.Errorf("drain: %v", err)
		}
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeStream, reasonRefused)); got != 3 {
			t.Errorf("refused = %v, want 3", got)
		}
		if got := counter(b.s.m.openStreams.WithLabelValues(modeStream)); got != 0 {
			t.Errorf("open streams = %v, want 0", got)
		}
	})
}

// TestMaxStreams: past the cap, streams of any mode get 503 no-store until
// one ends.
func TestMaxStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.MaxStreams = 1
		b := newBubble(t, cfg, testSegmenter())
		b.sleepUntil(time.Second)
		first := b.get(b.segPath(0))
		b.want(first, "first stream", http.StatusOK, time.Second)
		second := b.get("/v1/feeds/prices/events")
		b.want(second, "second stream", http.StatusServiceUnavailable, time.Second)
		if got := second.head("Cache-Control"); got != "no-store" {
			t.Errorf("second stream: Cache-Control %q", got)
		}
		first.cancel()
		synctest.Wait()
		third := b.get("/v1/feeds/prices/events")
		b.want(third, "stream after the first ended", http.StatusOK, time.Second)
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeStream, reasonClientGone)); got != 1 {
			t.Errorf("client gone = %v, want 1", got)
		}
	})
}

// tail returns the end of s, for messages.
func tail(s string) string {
	if len(s) > 120 {
		return "…" + s[len(s)-120:]
	}
	return s
}

// dump formats writes for a failure message.
func dump(b *bubble, ws []write) string {
	var sb strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&sb, "\n  t0+%v %q", w.at.Sub(b.t0), tail(w.data))
	}
	return sb.String()
}

// TestSlowReader: a stream-mode viewer that falls more than MaxLagBytes
// behind the log is closed as slow, one that cannot take a batch within
// WriteTimeout as a write error, both aborted and counted as slow readers.
func TestSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.MaxLagBytes = 1000
		cfg.WriteTimeout = 3 * time.Second
		b := newBubble(t, cfg, testSegmenter())
		b.sleepUntil(100 * time.Millisecond)
		lagging, release := b.stall(b.segPath(0))
		stuck, _ := b.stall(b.segPath(0))
		for i := range 20 { // 20 updates of more than 50 bytes each
			b.update(fmt.Sprint("K", i), `{"p":12345678901234567890}`)
		}
		b.sleepUntil(200 * time.Millisecond)
		release()
		synctest.Wait()
		b.wantEnded(lagging, "lagging viewer", 200*time.Millisecond)
		if aborted, _ := lagging.outcome(); !aborted {
			t.Error("lagging viewer: not aborted")
		}

		b.sleepUntil(3100*time.Millisecond - time.Nanosecond)
		if ended, _ := stuck.ended(); ended {
			t.Error("stuck viewer closed before its write timeout")
		}
		b.sleepUntil(3100 * time.Millisecond)
		b.wantEnded(stuck, "stuck viewer", 3100*time.Millisecond)
		if aborted, _ := stuck.outcome(); !aborted {
			t.Error("stuck viewer: not aborted")
		}
		m := b.s.m
		for reason, want := range map[string]float64{reasonSlow: 1, reasonWriteError: 1} {
			if got := counter(m.streamClosed.WithLabelValues(modeStream, reason)); got != want {
				t.Errorf("closed %s = %v, want %v", reason, got, want)
			}
		}
		if got := counter(m.slowClosed.WithLabelValues(modeStream)); got != 2 {
			t.Errorf("slow readers closed = %v, want 2", got)
		}
	})
}
