package origin

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDrainBatches: readiness goes 503 at once and new streams are
// refused; after DrainDelay the open streams end in DrainBatches batches
// spread evenly over DrainSpread. Streams of the open segment are aborted
// (never ended cleanly, so no edge caches them truncated); a direct stream
// ends. Drain returns when the last one has ended.
func TestDrainBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.DrainDelay = time.Second
		cfg.DrainSpread = 2 * time.Second
		cfg.DrainBatches = 4
		b := newBubble(t, cfg, testSegmenter())
		b.sleepUntil(time.Second)
		var streams []*exchange
		for range 7 {
			streams = append(streams, b.get(b.segPath(0)))
		}
		direct := b.get("/v1/feeds/prices/events")
		if got := counter(b.s.m.openStreams.WithLabelValues(modeStream)); got != 7 {
			t.Fatalf("open streams = %v, want 7", got)
		}

		b.sleepUntil(2 * time.Second)
		drained := make(chan error, 1)
		var returned time.Time
		go func() {
			err := b.s.Drain(context.Background())
			returned = time.Now()
			drained <- err
		}()
		synctest.Wait()
		if !b.s.Draining() {
			t.Error("Draining() = false after Drain started")
		}
		ready := b.get("/readyz")
		b.want(ready, "readyz while draining", http.StatusServiceUnavailable, 2*time.Second)
		b.sleepUntil(2500 * time.Millisecond)
		refused := b.get(b.segPath(0))
		b.want(refused, "new stream while draining", http.StatusServiceUnavailable, 2500*time.Millisecond)
		if got := refused.head("Cache-Control"); got != "no-store" {
			t.Errorf("new stream while draining: Cache-Control %q", got)
		}

		if err := <-drained; err != nil {
			t.Fatalf("drain: %v", err)
		}
		if want := b.at(4500 * time.Millisecond); !returned.Equal(want) {
			t.Errorf("Drain returned at t0+%v, want t0+4.5s", returned.Sub(b.t0))
		}
		var ends []time.Duration
		for i, x := range append(slices.Clone(streams), direct) {
			ended, at := x.ended()
			if !ended {
				t.Fatalf("stream %d still open after Drain returned", i)
			}
			ends = append(ends, at.Sub(b.t0))
			aborted, p := x.outcome()
			if p != nil {
				t.Errorf("stream %d panicked: %v", i, p)
			}
			if want := x != direct; aborted != want {
				t.Errorf("stream %d (direct %v): aborted %v, want %v", i, x == direct, aborted, want)
			}
		}
		slices.Sort(ends)
		want := []time.Duration{3000, 3000, 3500, 3500, 4000, 4000, 4500, 4500}
		for i := range want {
			want[i] *= time.Millisecond
		}
		if !slices.Equal(ends, want) {
			t.Errorf("streams ended at %v, want %v (batches of 2 every 500ms after a 1s delay)", ends, want)
		}
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeStream, reasonDrain)); got != 7 {
			t.Errorf("stream closed by drain = %v, want 7", got)
		}
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeDirect, reasonDrain)); got != 1 {
			t.Errorf("direct closed by drain = %v, want 1", got)
		}
		if got := counter(b.s.m.openStreams.WithLabelValues(modeStream)); got != 0 {
			t.Errorf("open streams = %v after drain", got)
		}
		if probs, err := testutil.GatherAndLint(b.reg); err != nil || len(probs) > 0 {
			t.Errorf("lint: %v %v", err, probs)
		}
		// Drain is idempotent: a second call returns at once, all ended.
		if err := b.s.Drain(context.Background()); err != nil {
			t.Errorf("second drain: %v", err)
		}
	})
}

// TestDrainTimeout: Drain gives up when its context ends, naming how many
// streams are still open.
func TestDrainTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.DrainDelay = 3 * time.Second
		b := newBubble(t, cfg, testSegmenter())
		b.get(b.segPath(0))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.s.Drain(ctx); err == nil {
			t.Error("Drain returned nil before its delay ended")
		}
		if got := time.Since(b.t0); got != time.Second {
			t.Errorf("Drain returned after %v, want 1s", got)
		}
	})
}

// TestDrainAdmitRace is the regression test of a drain racing a stream's
// admission. Admission used to check "draining" first and register the
// stream later, so a drain that took its list of streams in between never
// ended that stream (and then waited for it until its context ran out).
// The hook runs a whole drain — delay, list, batches — at that point,
// between the handler deciding to stream and its admission: the stream
// must be refused, and Drain must not wait for it. The old openStream,
// with the hook after its check, served the stream and never ended it.
func TestDrainAdmitRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.DrainDelay = 0
		b := newBubble(t, cfg, testSegmenter())
		drained := make(chan error, 1)
		var once sync.Once
		b.s.testHookAdmit = func() {
			once.Do(func() {
				go func() { drained <- b.s.Drain(context.Background()) }()
				if err := <-drained; err != nil {
					t.Errorf("drain: %v", err)
				}
			})
		}
		x := b.get(b.segPath(0))
		b.want(x, "stream admitted after drain", http.StatusServiceUnavailable, 0)
		b.wantEnded(x, "stream admitted after drain", 0)
		if got := counter(b.s.m.openStreams.WithLabelValues(modeStream)); got != 0 {
			t.Errorf("open streams = %v, want 0", got)
		}
	})
}

// TestDrainAdmitConcurrent: streams opening in every mode while a drain
// runs are each either refused or ended by the drain, and the drain
// returns (run with -race).
func TestDrainAdmitConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Defaults()
		cfg.DrainDelay = 0
		cfg.DrainSpread = 0
		cfg.DrainBatches = 3
		b := newBubble(t, cfg, testSegmenter())
		b.sleepUntil(1500 * time.Millisecond)
		paths := []string{b.segPath(0), "/v1/feeds/prices/events", b.segPath(0, "/parts/1"), b.segPath(0, "/parts/2")}
		var xs []*exchange
		for i := range 40 {
			xs = append(xs, b.do(http.MethodGet, paths[i%len(paths)]))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.s.Drain(ctx); err != nil {
			t.Fatalf("drain: %v", err)
		}
		synctest.Wait()
		for i, x := range xs {
			if ended, _ := x.ended(); !ended {
				t.Errorf("request %d (%s) still running after drain", i, paths[i%len(paths)])
			}
		}
		if got := time.Since(b.t0); got != 1500*time.Millisecond {
			t.Errorf("drain took until t0+%v, want no time at all", got)
		}
	})
}
