package origin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"marquee/segmenter"
)

// TestPartBlockingReload: a request for the part in progress, or the next
// one, is held and released exactly when that part ends, with the bytes
// written during it, immutable; a finished part answers at once; a part
// further ahead is 404. A held request for a part of the next segment
// waits for the segment, then for the part.
func TestPartBlockingReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(2200 * time.Millisecond)
		b.update("B", `{"p":2}`)
		b.sleepUntil(2500 * time.Millisecond)

		done := b.get(b.segPath(0, "/parts/1"))
		b.want(done, "finished part 1", http.StatusOK, 2500*time.Millisecond)
		if got := done.body(); got != keepalive {
			t.Errorf("part 1 = %q, want the keepalive that ended it at t0+2s", got)
		}
		inProgress := b.get(b.segPath(0, "/parts/2"))
		upto := b.get(b.segPath(0, "/upto/2"))
		next := b.get(b.segPath(0, "/parts/3"))
		ahead := b.get(b.segPath(0, "/parts/4"))
		b.want(ahead, "part 4 (2.5s ahead)", http.StatusNotFound, 2500*time.Millisecond)
		if got := ahead.head("Cache-Control"); got != "no-store" {
			t.Errorf("part 4: Cache-Control %q", got)
		}
		b.sleepUntil(2600 * time.Millisecond)
		b.update("C", `{"p":3}`)

		b.sleepUntil(3*time.Second - time.Nanosecond)
		for _, x := range []*exchange{inProgress, upto, next} {
			b.wantHeld(x, "part 1ns before part 2 ends")
		}
		b.sleepUntil(3 * time.Second)
		b.want(inProgress, "part 2", http.StatusOK, 3*time.Second)
		b.want(upto, "upto 2", http.StatusOK, 3*time.Second)
		b.wantHeld(next, "part 3 at the end of part 2")
		part2 := inProgress.body()
		if got := ids(part2); strings.Contains(part2, keepalive) || got != "2 3" {
			t.Errorf("part 2 = %q, want updates 2 3 and no keepalive (0.4 s of silence at its end)", part2)
		}
		if got, want := inProgress.head("Cache-Control"), "public, max-age=86400, immutable, no-transform"; got != want {
			t.Errorf("part 2: Cache-Control %q, want %q", got, want)
		}
		if got := inProgress.head("Content-Length"); got != strconv.Itoa(len(part2)) {
			t.Errorf("part 2: Content-Length %s, body %d bytes", got, len(part2))
		}
		part0 := b.get(b.segPath(0, "/parts/0")).body()
		if got, want := upto.body(), part0+keepalive+part2; got != want {
			t.Errorf("upto 2 = %q, want parts 0..2 = %q", got, want)
		}

		b.sleepUntil(4 * time.Second)
		b.want(next, "part 3", http.StatusOK, 4*time.Second)
		if got := next.body(); got != keepalive { // ends part 3 at t0+4s, 1.4 s after update 3
			t.Errorf("part 3 = %q, want one keepalive", got)
		}

		// The first part of the next segment, asked for 1.5 s before it ends.
		b.sleepUntil(9500 * time.Millisecond)
		first := b.get(b.segPath(1, "/parts/0"))
		b.sleepUntil(11*time.Second - time.Nanosecond)
		b.wantHeld(first, "part 0 of the next segment")
		b.sleepUntil(11 * time.Second)
		b.want(first, "part 0 of the next segment", http.StatusOK, 11*time.Second)
		if body := first.body(); !strings.Contains(body, fmt.Sprintf(`"segment":%d`, b.n0+1)) || ids(body) != "3" {
			t.Errorf("part 0 of the next segment = %q, want its snapshot at 3", body)
		}

		m := b.s.m
		for kind, want := range map[string][2]float64{"part": {5, 3}, "upto": {1, 1}} {
			if got := counter(m.partResponses.WithLabelValues("prices", kind)); got != want[0] {
				t.Errorf("%s responses = %v, want %v", kind, got, want[0])
			}
			if got := counter(m.partHeld.WithLabelValues("prices", kind)); got != want[1] {
				t.Errorf("%s held = %v, want %v", kind, got, want[1])
			}
		}
	})
}

// TestPartLateness: with a lateness allowance, a held part is released at
// its end plus the allowance, holding an update stamped in it that arrived
// after its end; or at once when an update stamped after its end arrives.
// The segment itself opens at its start plus the allowance.
func TestPartLateness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scfg := testSegmenter()
		scfg.PartLateness = 250 * time.Millisecond
		b := newBubble(t, Defaults(), scfg)
		early := b.get(b.segPath(0))
		b.sleepUntil(scfg.PartLateness - time.Nanosecond)
		b.wantHeld(early, "segment before its start plus the allowance")
		b.sleepUntil(scfg.PartLateness)
		b.want(early, "segment", http.StatusOK, scfg.PartLateness)

		apply := func(seq uint64, stamped time.Duration) {
			t.Helper()
			if err := b.hub.Apply("prices", segmenter.Update{Key: "K", Value: json.RawMessage(`{}`), Seq: seq, Time: b.at(stamped)}); err != nil {
				t.Fatal(err)
			}
		}
		b.sleepUntil(1500 * time.Millisecond)
		p1 := b.get(b.segPath(0, "/parts/1"))
		b.sleepUntil(2100 * time.Millisecond)
		apply(2, 1900*time.Millisecond) // stamped in part 1, arriving after its end
		b.sleepUntil(2250*time.Millisecond - time.Nanosecond)
		b.wantHeld(p1, "part 1 within its allowance")
		b.sleepUntil(2250 * time.Millisecond)
		b.want(p1, "part 1", http.StatusOK, 2250*time.Millisecond)
		if got := ids(p1.body()); got != "2" {
			t.Errorf("part 1 holds %q, want the late update 2", got)
		}

		p2 := b.get(b.segPath(0, "/parts/2"))
		b.sleepUntil(3100 * time.Millisecond)
		apply(3, 3050*time.Millisecond) // stamped after part 2's end: it closes now
		synctest.Wait()
		b.want(p2, "part 2", http.StatusOK, 3100*time.Millisecond)
		if got := p2.body(); got != keepalive {
			t.Errorf("part 2 = %q, want the keepalive ending it 1.1 s after update 2", got)
		}
	})
}

// TestPartHoldEnds: a held part request ends when the client leaves
// (client_gone), at drain (503, drain), and when its part is not recorded
// within tickGrace of its end (503, refused).
func TestPartHoldEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.DrainDelay = 0
		b := newLoadingBubble(t, cfg, testSegmenter()) // no segment ever opens
		b.sleepUntil(500 * time.Millisecond)
		gone := b.get(b.segPath(0, "/parts/0"))
		expires := b.get(b.segPath(0, "/parts/1"))
		b.sleepUntil(time.Second)
		gone.cancel()
		synctest.Wait()
		b.wantEnded(gone, "client gone", time.Second)

		b.sleepUntil(4*time.Second - time.Nanosecond)
		b.wantHeld(expires, "part 1 before its bound")
		b.sleepUntil(4 * time.Second) // the end of part 1 plus tickGrace
		b.want(expires, "part 1 never recorded", http.StatusServiceUnavailable, 4*time.Second)

		drained := b.get(b.segPath(0, "/parts/4"))
		b.sleepUntil(4500 * time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- b.s.Drain(context.Background()) }()
		synctest.Wait()
		b.want(drained, "held part at drain", http.StatusServiceUnavailable, 4500*time.Millisecond)
		if err := <-done; err != nil {
			t.Errorf("drain: %v", err)
		}
		for reason, want := range map[string]float64{reasonClientGone: 1, reasonRefused: 1, reasonDrain: 1} {
			if got := counter(b.s.m.streamClosed.WithLabelValues(modePart, reason)); got != want {
				t.Errorf("part closed %s = %v, want %v", reason, got, want)
			}
		}
	})
}
