//go:build unix

package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/cdn/probe"
	"marquee/internal/testenv"
	"marquee/segmenter"
	"marquee/sse"
	"marquee/wire"
)

// Parts mode behind an edge that buffers cacheable responses
// (marquee-buffered.vcl: do_stream off, as Cloudflare buffers). How Varnish
// turns 1,000 viewers into one origin request per part: the first request
// for parts/{k} misses and makes a busy object whose backend fetch the
// origin holds until part k is finished; every other request for the same
// path that arrives meanwhile waits on the object's waiting list (no worker
// thread held); when the fetch completes the object is cached (immutable)
// and the waiting list is rushed, so all of them are hits. Errors would
// break this: Varnish makes any non-200 answer a hit-for-miss object for 1s
// (marquee.vcl), and requests for that path during that second each go to
// the origin. So the client must never ask for a part the origin refuses:
// it only asks for the part in progress (named by the descriptor) or the
// one after the part it has just received, which the origin holds.

// partsMetrics is the origin's parts-mode counters for one feed.
type partsMetrics struct {
	part, upto, heldPart, heldUpto, refused float64
}

const (
	routePart = "GET /v1/feeds/{feed}/segments/{n}/parts/{k}"
	routeUpto = "GET /v1/feeds/{feed}/segments/{n}/upto/{k}"
)

func readPartsMetrics(o *testenv.Origin, feed string) partsMetrics {
	m := func(name, kind string) float64 {
		return o.Metric(name, map[string]string{"feed": feed, "kind": kind})
	}
	// 4xx on the part routes, all feeds (the route label has no feed).
	refused := o.Metric("marquee_http_requests_total", map[string]string{"route": routePart, "code": "4xx"}) +
		o.Metric("marquee_http_requests_total", map[string]string{"route": routeUpto, "code": "4xx"})
	return partsMetrics{
		part: m("marquee_part_responses_total", "part"), upto: m("marquee_part_responses_total", "upto"),
		heldPart: m("marquee_part_held_total", "part"), heldUpto: m("marquee_part_held_total", "upto"),
		refused: refused,
	}
}

func (a partsMetrics) sub(b partsMetrics) partsMetrics {
	return partsMetrics{a.part - b.part, a.upto - b.upto, a.heldPart - b.heldPart, a.heldUpto - b.heldUpto, a.refused - b.refused}
}

// startCleanPublisher is startPublisher with a stop that lets a publish in
// flight finish and be recorded, so that the acks are exactly what
// JetStream stored: the final-state check compares viewers with all of it.
// failed counts publishes that returned an error (their fate is unknown).
func startCleanPublisher(t *testing.T, n *testenv.NATS, feeds []string, every time.Duration) (p *publisher, failed *atomic.Int64) {
	t.Helper()
	js, err := jetstream.New(n.Pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p = &publisher{acks: map[string][]ack{}, stop: cancel}
	failed = &atomic.Int64{}
	for _, f := range feeds {
		p.wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				// Not derived from ctx: a publish in flight at Stop completes.
				pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
				a, err := js.Publish(pctx, "feeds."+f+".k"+strconv.Itoa(i%7), fmt.Appendf(nil, `{"n":%d,"feed":%q}`, i, f))
				pcancel()
				if err != nil {
					failed.Add(1)
				} else {
					p.mu.Lock()
					p.acks[f] = append(p.acks[f], ack{seq: a.Sequence, at: time.Now()})
					p.mu.Unlock()
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	t.Cleanup(p.Stop)
	return p, failed
}

// TestPartsThroughBufferingEdge: 1,000 viewers (flag -marquee.viewers), half
// on each feed, join at random moments over three 3-second segments through
// Varnish with marquee-buffered.vcl and follow the feed in parts mode (1 s
// parts) through a fourth segment: descriptor, upto/{k} of the part in
// progress (held until it ends), then parts/{k+1}, … across segment
// boundaries, one request outstanding. Updates are published 25 times a
// second per feed with JetStream acks; publishing stops 1.5 s before the
// last segment ends.
//
// Asserted: the origin answered exactly one parts/{k} response per part the
// viewers requested, per feed, and no more upto/{k} responses than distinct
// upto URLs requested; every viewer of a part shared one origin response
// and identical bytes; no part request was refused (nor ever asked for a
// part beyond the next one); every viewer applied every update published
// after its join exactly once, in order, and ended with the origin's
// snapshot. Reported, not asserted: publish-to-viewer latency against the
// target of P + 250 ms.
func TestPartsThroughBufferingEdge(t *testing.T) {
	const partLen = time.Second
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: segLen, PartLength: partLen})
	pub, failed := startCleanPublisher(t, n, feeds, 40*time.Millisecond)
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, f := range feeds {
			if _, ok := o.Hub.Feed(f); !ok {
				return fmt.Errorf("feed %s not there", f)
			}
		}
		return nil
	})
	v := StartVarnish(t, VarnishOptions{Backend: o.Addr, VCL: "marquee-buffered.vcl", Threads: *viewersFlag/2 + 100})
	g := o.Hub.Grid()

	// Start just after a segment boundary: joins cover three segments, and
	// every viewer follows through the fourth.
	time.Sleep(time.Until(g.End(g.Index(time.Now())).Add(50 * time.Millisecond)))
	first := g.Index(time.Now())
	last := first + 3
	joinBy := g.End(first + 2).Add(-300 * time.Millisecond) // on the grid: the probe's start-up cannot move it
	before := map[string]partsMetrics{}
	for _, f := range feeds {
		before[f] = readPartsMetrics(o, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	// Stop publishing 1.5 s before the last segment ends, so that the last
	// parts the viewers read carry the origin's final state.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-time.After(time.Until(g.End(last).Add(-1500 * time.Millisecond))):
		case <-ctx.Done():
		}
		pub.Stop()
	}()
	cpu0 := selfCPU()
	edge0, _ := cpuTime(v.cmd.Process.Pid)
	start := time.Now()
	results := map[string]*probe.PartsResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, f := range feeds {
		wg.Go(func() {
			res, err := probe.Parts(ctx, probe.Config{
				Base:    v.URL,
				Feed:    f,
				Viewers: *viewersFlag / len(feeds),
				JoinBy:  joinBy,
				Random:  true,
				Follow:  1,
				Noise:   true,
				// Lateness is measured and logged, never a failure: a busy
				// machine must not fail a correctness test.
				PartSlack: time.Minute,
			})
			if err != nil {
				t.Errorf("feed %s: %v", f, err)
				return
			}
			mu.Lock()
			results[f] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := selfCPU() - cpu0
	edge1, _ := cpuTime(v.cmd.Process.Pid)
	<-stopped
	if t.Failed() {
		t.FailNow()
	}
	if got := failed.Load(); got > 0 {
		t.Fatalf("%d publishes failed: cannot tell what the viewers should have seen", got)
	}

	var latency probe.Durations // publish → viewer, local clock (same host as NATS)
	var fetches, viewers int
	var responses, distinct float64
	for _, f := range feeds {
		r := results[f]
		if r.First != first || r.Last != last {
			t.Errorf("%s: probe followed segments %d..%d, want %d..%d", f, r.First, r.Last, first, last)
		}
		delta := readPartsMetrics(o, f).sub(before[f])
		parts, uptos := map[[2]int64]bool{}, map[[2]int64]bool{}
		for _, vw := range r.Viewers {
			viewers++
			if vw.Err != "" {
				t.Errorf("%s viewer %d (%s): %s", f, vw.Viewer, vw.Variant, vw.Err)
				continue
			}
			for _, fe := range vw.Fetches {
				fetches++
				key := [2]int64{fe.Segment, int64(fe.Part)}
				if fe.Upto {
					uptos[key] = true
				} else {
					parts[key] = true
				}
				// Never ahead of the origin: the part asked for ends at
				// most one part length after the request (the part in
				// progress, or the next one right after the previous
				// part arrived). The origin refuses beyond two.
				if ahead := g.PartEnd(fe.Segment, fe.Part).Sub(fe.Requested); ahead > partLen {
					t.Errorf("%s viewer %d asked for segment %d part %d %s before it ends", f, vw.Viewer, fe.Segment, fe.Part, ahead)
				}
				// Never served early, whatever the machine's load: the
				// origin releases a part only once it has ended, so its
				// first byte (same host, same clock) cannot come before
				// the part's end. How much later it comes is logged below.
				if fe.Status == http.StatusOK && !fe.FirstByte.IsZero() && fe.FirstByte.Before(g.PartEnd(fe.Segment, fe.Part)) {
					t.Errorf("%s viewer %d got segment %d part %d %s before it ended", f, vw.Viewer, fe.Segment, fe.Part, g.PartEnd(fe.Segment, fe.Part).Sub(fe.FirstByte))
				}
			}
		}
		for _, st := range r.Parts {
			if st.Responses != 1 || !st.Identical || st.Errors != 0 {
				t.Errorf("%s segment %d part %d (upto %v): %d viewers, %d origin responses, identical %v, %d errors",
					f, st.Segment, st.Part, st.Upto, st.Viewers, st.Responses, st.Identical, st.Errors)
			}
		}
		if got, want := delta.part, float64(len(parts)); got != want {
			t.Errorf("%s: the origin answered %v parts/{k} responses for %v distinct parts requested", f, got, want)
		}
		if got, limit := delta.upto, float64(len(uptos)); got > limit {
			t.Errorf("%s: the origin answered %v upto/{k} responses for %v distinct upto URLs requested", f, got, limit)
		}
		if delta.refused != 0 {
			t.Errorf("the origin refused %v part or upto requests (4xx)", delta.refused)
		}
		if !r.Pass {
			t.Errorf("%s: probe verdict: %s", f, r.Verdict)
		}
		responses += delta.part + delta.upto
		distinct += float64(len(parts) + len(uptos))
		t.Logf("%s: %d viewers, %d distinct parts and %d distinct upto URLs requested; origin answered %v parts (%v held) and %v upto (%v held)",
			f, len(r.Viewers), len(parts), len(uptos), delta.part, delta.heldPart, delta.upto, delta.heldUpto)

		checkPartsViewers(t, o, f, r, pub.acked(f))
		for _, vw := range r.Viewers {
			for _, u := range vw.Applied {
				if pubAt := time.UnixMilli(u.Time); !pubAt.Before(vw.Joined) {
					latency = append(latency, u.Arrived.Sub(pubAt))
				}
			}
		}
		t.Logf("%s: probe's own figures (clock offset estimated %s): %d requests held until their part ended; first byte after the part's end (or the request, if later) %s; join to state %s",
			f, r.Offset, r.Held, r.Wait, r.JoinTime)
	}
	target := partLen + 250*time.Millisecond
	t.Logf("parts through a buffering edge: %d viewers, %d part requests, %.0f origin part responses for %.0f distinct part URLs in %s",
		viewers, fetches, responses, distinct, elapsed.Round(time.Millisecond))
	t.Logf("publish-to-viewer latency: p50 %s, p99 %s, max %s (n=%d); target: median at most P + 250 ms = %s (%s)",
		latency.Quantile(0.5).Round(time.Millisecond), latency.Quantile(0.99).Round(time.Millisecond), latency.Max().Round(time.Millisecond),
		len(latency), target, map[bool]string{true: "met", false: "MISSED"}[latency.Quantile(0.5) <= target])
	t.Logf("CPU of this process (origin + viewers) %s; edge %s", cpu.Round(time.Millisecond), (edge1 - edge0).Round(time.Millisecond))
	v.LogStats()
}

// checkPartsViewers checks that every viewer of feed applied every update
// acknowledged after its first snapshot exactly once and in order, and
// ended with the origin's state.
func checkPartsViewers(t *testing.T, o *testenv.Origin, feed string, r *probe.PartsResult, acks []ack) {
	t.Helper()
	fd, ok := o.Hub.Feed(feed)
	if !ok {
		t.Fatalf("feed %s gone", feed)
	}
	body, seq := fd.Snapshot(time.Now())
	var now wire.Snapshot
	if err := json.Unmarshal(body, &now); err != nil {
		t.Fatalf("origin snapshot: %v", err)
	}
	if len(acks) == 0 || acks[len(acks)-1].seq != seq {
		t.Fatalf("%s: origin holds seq %d, the last publish acknowledged was %v", feed, seq, acks[len(acks)-1:])
	}
	// What the viewers must end with: everything the origin put into the
	// segments they followed, which is the snapshot opening the next one.
	// Publishing stops 1.5 s before the last followed segment ends, so this
	// is normally the origin's final state; an update that reached a
	// loaded origin later than that went into the next segment, past what
	// the viewers read (logged, not a failure).
	snap := nextSnapshot(t, fd, r.Last+1)
	seq = snap.Seq
	if seq != now.Seq {
		t.Logf("%s: %d updates reached the origin after the last followed part (seq %d of %d)", feed, countAfter(acks, seq), seq, now.Seq)
	}
	var upTo []ack
	for _, a := range acks {
		if a.seq <= seq {
			upTo = append(upTo, a)
		}
	}
	acks = upTo
	bad := 0
	for _, v := range r.Viewers {
		err := checkPartsViewer(v, acks, seq, snap.Entries)
		if err == nil {
			continue
		}
		if bad++; bad <= 10 {
			t.Errorf("%s viewer %d (%s): %v", feed, v.Viewer, v.Variant, err)
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d viewers in all did not apply every update exactly once", feed, bad)
	}
}

// nextSnapshot returns the snapshot that opens segment n of fd (waiting
// for the segment, which opens when the one before it rotates).
func nextSnapshot(t *testing.T, fd *segmenter.Feed, n int64) wire.Snapshot {
	t.Helper()
	var snap wire.Snapshot
	testenv.Eventually(t, 10*time.Second, func() error {
		l, ok := fd.Segment(n)
		if !ok {
			return fmt.Errorf("segment %d not open", n)
		}
		ev, err := sse.NewDecoder(bytes.NewReader(l.Bytes())).Next()
		if err != nil || ev.Type != "snapshot" {
			return fmt.Errorf("segment %d: first event %q, %v", n, ev.Type, err)
		}
		return json.Unmarshal(ev.Data, &snap)
	})
	return snap
}

// countAfter counts the acks after seq.
func countAfter(acks []ack, seq uint64) int {
	n := 0
	for _, a := range acks {
		if a.seq > seq {
			n++
		}
	}
	return n
}

func checkPartsViewer(v probe.PartsViewer, acks []ack, seq uint64, entries map[string]json.RawMessage) error {
	if len(v.Problems) > 0 {
		return fmt.Errorf("%d problems, first: %s", len(v.Problems), v.Problems[0])
	}
	if v.Dropped > 0 {
		return fmt.Errorf("received %d updates twice", v.Dropped)
	}
	var want []uint64
	for _, a := range acks {
		if a.seq > v.FirstSeq {
			want = append(want, a.seq)
		}
	}
	got := make([]uint64, len(v.Applied))
	for i, u := range v.Applied {
		got[i] = u.Seq
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("applied %d updates, %d were published after seq %d: missing or extra %v", len(got), len(want), v.FirstSeq, symmetricDiff(got, want))
	}
	if v.Seq != seq {
		return fmt.Errorf("holds seq %d, the origin %d", v.Seq, seq)
	}
	if len(v.Entries) != len(entries) {
		return fmt.Errorf("holds %d keys, the origin %d", len(v.Entries), len(entries))
	}
	for k, want := range entries {
		if got := v.Entries[k]; string(got) != string(want) {
			return fmt.Errorf("key %s = %s, the origin has %s", k, got, want)
		}
	}
	return nil
}

// TestStreamVsPartsThroughBufferingEdge: behind an edge that buffers
// cacheable responses, stream mode delivers nothing progressively (every
// byte of a segment arrives only once the segment has ended, so the probe
// classifies the edge as buffering), while parts mode through the same edge
// is live: each part arrives once it ends, and the recommendation is parts.
func TestStreamVsPartsThroughBufferingEdge(t *testing.T) {
	s := startStack(t)
	v := StartVarnish(t, VarnishOptions{Backend: s.origin.Addr, VCL: "marquee-buffered.vcl"})
	g := s.origin.Hub.Grid()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cfg := probe.Config{Base: v.URL, Feed: "scores", Viewers: 50, Follow: 1, Noise: true, PartSlack: time.Minute}
	stream, streamErr, parts, pErr := probe.Both(ctx, cfg)
	if streamErr != nil || pErr != nil {
		t.Fatalf("stream probe: %v; parts probe: %v", streamErr, pErr)
	}
	var report strings.Builder
	stream.WriteReport(&report)
	report.WriteString("\n")
	parts.WriteReport(&report)
	rec := probe.Recommend(stream, nil, parts, nil)
	report.WriteString("\n")
	rec.WriteReport(&report)
	t.Logf("stream and parts mode through the buffering edge:\n%s", report.String())

	// Stream mode: nothing before the segment's end, for anyone.
	if !stream.Buffering.Buffers || stream.Pass || !strings.Contains(stream.Verdict, "buffers:") {
		t.Errorf("stream mode through the buffering edge: buffers %v, verdict %q", stream.Buffering.Buffers, stream.Verdict)
	}
	var late probe.Durations
	for _, o := range stream.Observations {
		if o.Status != http.StatusOK || o.FirstByte.IsZero() {
			continue
		}
		if end := g.End(o.Segment); o.FirstByte.Before(end) {
			t.Errorf("viewer %d got segment %d's first byte %s before the segment ended: the edge streamed", o.Viewer, o.Segment, end.Sub(o.FirstByte))
		}
		if o.Requested.After(g.Start(o.Segment)) {
			late = append(late, o.FirstByte.Sub(o.Requested))
		}
	}
	// Parts mode: each part once it has ended, at once for everyone.
	if !parts.Pass {
		t.Errorf("parts mode through the buffering edge: %s", parts.Verdict)
	}
	for _, vw := range parts.Viewers {
		for _, fe := range vw.Fetches {
			if fe.Status == http.StatusOK && fe.FirstByte.Before(g.PartEnd(fe.Segment, fe.Part)) {
				t.Errorf("viewer %d got segment %d part %d before the part ended", vw.Viewer, fe.Segment, fe.Part)
			}
		}
	}
	if rec.Mode != "parts" || rec.Env != "MARQUEE_CLIENT_MODE=parts" || !rec.Pass {
		t.Errorf("recommendation %+v, want parts", rec)
	}
	t.Logf("stream mode: first byte after the request, for requests made while their segment was in progress: %s; event delay %s", late, stream.Buffering.Delays)
	t.Logf("parts mode: publish-to-viewer latency %s", parts.Latency)
}
