package origin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestDirectKeepalive: direct mode writes its own keepalive after each
// keepalive interval of silence, counted from the last write, and every
// update at once.
func TestDirectKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(300 * time.Millisecond)
		x := b.get("/v1/feeds/prices/events")
		b.want(x, "direct", http.StatusOK, 300*time.Millisecond)
		if got := x.head("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q", got)
		}
		b.sleepUntil(2500 * time.Millisecond)
		b.update("MSFT", `{"p":2}`)
		synctest.Wait()
		b.sleepUntil(4 * time.Second)
		x.cancel()
		synctest.Wait()

		want := []struct {
			at   time.Duration
			data string // prefix
		}{
			{300 * time.Millisecond, "retry: 3000\n\nid: 1\nevent: snapshot\n"},
			{1300 * time.Millisecond, keepalive},
			{2300 * time.Millisecond, keepalive},
			{2500 * time.Millisecond, "id: 2\nevent: update\n"},
			{3500 * time.Millisecond, keepalive},
		}
		got := x.log()
		if len(got) != len(want) {
			t.Fatalf("%d writes, want %d: %s", len(got), len(want), dump(b, got))
		}
		for i, w := range want {
			if !got[i].at.Equal(b.at(w.at)) || !strings.HasPrefix(got[i].data, w.data) {
				t.Errorf("write %d: t0+%v %q, want t0+%v %q…", i, got[i].at.Sub(b.t0), got[i].data, w.at, w.data)
			}
		}
		b.wantEnded(x, "direct", 4*time.Second)
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeDirect, reasonClientGone)); got != 1 {
			t.Errorf("direct client gone = %v, want 1", got)
		}
	})
}

// TestDirectResume: Last-Event-ID resumes from the history with exactly the
// updates after it, then live; an id the history cannot resume from (too
// old, from the future, not a number) gets a snapshot instead.
func TestDirectResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scfg := testSegmenter()
		scfg.History = 3
		b := newBubble(t, Defaults(), scfg)
		b.sleepUntil(100 * time.Millisecond)
		for _, k := range []string{"B", "C", "D", "E"} { // sequences 2..5; the history keeps 3..5
			b.update(k, `{"p":0}`)
		}
		b.sleepUntil(200 * time.Millisecond)

		resumed := b.get("/v1/feeds/prices/events", "Last-Event-ID", "2")
		b.want(resumed, "resume from 2", http.StatusOK, 200*time.Millisecond)
		first := resumed.log()
		if len(first) != 1 {
			t.Fatalf("resume: %d writes, want 1: %s", len(first), dump(b, first))
		}
		if got := ids(first[0].data); got != "3 4 5" || !strings.HasPrefix(first[0].data, "retry: 3000\n\n") || strings.Contains(first[0].data, "snapshot") {
			t.Errorf("resume from 2: ids %q in %q, want retry then 3 4 5 and no snapshot", got, first[0].data)
		}

		upToDate := b.get("/v1/feeds/prices/events", "Last-Event-ID", "5")
		if got := upToDate.body(); got != "retry: 3000\n\n" {
			t.Errorf("resume from 5: %q, want the retry field only", got)
		}

		for _, id := range []string{"1", "x7"} {
			x := b.get("/v1/feeds/prices/events", "Last-Event-ID", id)
			if got := ids(x.body()); got != "5" || !strings.Contains(x.body(), "event: snapshot\n") {
				t.Errorf("Last-Event-ID %s: ids %q in %q, want a snapshot at 5", id, got, x.body())
			}
		}

		b.sleepUntil(700 * time.Millisecond)
		b.update("F", `{"p":1}`)
		synctest.Wait()
		for _, x := range []*exchange{resumed, upToDate} {
			w := x.log()
			if last := w[len(w)-1]; !last.at.Equal(b.at(700*time.Millisecond)) || ids(last.data) != "6" {
				t.Errorf("live after resume: t0+%v %q, want update 6 at t0+700ms", last.at.Sub(b.t0), last.data)
			}
		}
	})
}

// ids returns the event ids of an SSE text, space-separated.
func ids(s string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			out = append(out, id)
		}
	}
	return strings.Join(out, " ")
}

// TestDirectSlowReader: a direct viewer that falls out of the history is
// closed as slow, cleanly (it resumes with Last-Event-ID and a snapshot).
func TestDirectSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scfg := testSegmenter()
		scfg.History = 4
		b := newBubble(t, Defaults(), scfg)
		b.sleepUntil(100 * time.Millisecond)
		x, release := b.stall("/v1/feeds/prices/events")
		for i := range 6 {
			b.update(fmt.Sprint("K", i), `{"p":1}`)
		}
		b.sleepUntil(500 * time.Millisecond)
		release()
		synctest.Wait()
		b.wantEnded(x, "direct viewer out of the history", 500*time.Millisecond)
		if aborted, p := x.outcome(); aborted || p != nil {
			t.Errorf("direct viewer: aborted %v, panic %v; want a clean end", aborted, p)
		}
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeDirect, reasonSlow)); got != 1 {
			t.Errorf("direct closed slow = %v, want 1", got)
		}
		if got := counter(b.s.m.slowClosed.WithLabelValues(modeDirect)); got != 1 {
			t.Errorf("direct slow readers closed = %v, want 1", got)
		}
	})
}

// TestDirectCatchUp: a viewer resuming from an id this replica has not
// applied yet (it reconnected to a replica a little behind) waits for it
// and resumes exactly after it, with no snapshot; an id that never comes
// gets a snapshot after directCatchUp.
func TestDirectCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(100 * time.Millisecond)
		for _, k := range []string{"B", "C", "D", "E"} { // sequences 2..5
			b.update(k, `{"p":0}`)
		}
		b.sleepUntil(200 * time.Millisecond)
		behind := b.get("/v1/feeds/prices/events", "Last-Event-ID", "7")
		never := b.get("/v1/feeds/prices/events", "Last-Event-ID", "99")
		b.sleepUntil(500 * time.Millisecond)
		b.update("F", `{"p":1}`) // 6
		synctest.Wait()
		if got := ids(behind.body()); got != "" {
			t.Errorf("before 7 arrived: ids %q, want none", got)
		}
		b.sleepUntil(600 * time.Millisecond)
		b.update("G", `{"p":1}`) // 7
		b.update("H", `{"p":1}`) // 8
		synctest.Wait()
		if got := behind.body(); strings.Contains(got, "snapshot") || ids(got) != "8" {
			t.Errorf("after catching up: %q, want update 8 only", got)
		}
		if strings.Contains(never.body(), "snapshot") {
			t.Errorf("id 99 got a snapshot before the catch-up bound")
		}
		b.sleepUntil(200*time.Millisecond + directCatchUp)
		if got := never.body(); !strings.Contains(got, "event: snapshot\n") || ids(got) != "8" {
			t.Errorf("id 99 after the catch-up bound: %q, want a snapshot at 8", got)
		}
	})
}
