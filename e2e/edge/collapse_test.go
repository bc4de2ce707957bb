//go:build unix

package edge_test

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/cdn/probe"
	"marquee/internal/testenv"
)

var viewersFlag = flag.Int("marquee.viewers", 1000, "viewers in the collapse tests (CI runs 1000; try 5000)")

// feeds are the feeds of the collapse tests; viewers are split between them.
var feeds = []string{"scores", "prices"}

const segLen = 3 * time.Second

// stack is NATS + origin (+ an edge) with a steady publisher.
type stack struct {
	nats   *testenv.NATS
	origin *testenv.Origin
	pub    *publisher
}

// startStack starts NATS and an origin with 3 s segments, creates the feeds
// and starts publishing 25 updates per second per feed.
func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t, testenv.Options{})
}

// startStackWith is startStack with opts (SegmentLength: segLen).
func startStackWith(t *testing.T, opts testenv.Options) *stack {
	t.Helper()
	n := testenv.StartNATS(t)
	opts.SegmentLength = segLen
	o := testenv.StartOrigin(t, n, opts)
	p := startPublisher(t, n, feeds, 40*time.Millisecond)
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, f := range feeds {
			if _, ok := o.Hub.Feed(f); !ok {
				return fmt.Errorf("feed %s not there", f)
			}
		}
		return nil
	})
	return &stack{nats: n, origin: o, pub: p}
}

// ack is one published message as JetStream acknowledged it.
type ack struct {
	seq uint64
	at  time.Time
}

// publisher publishes to every feed at a steady rate with JetStream acks, so
// the test knows every sequence number a viewer must see.
type publisher struct {
	mu   sync.Mutex // guards acks
	acks map[string][]ack
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func startPublisher(t *testing.T, n *testenv.NATS, feeds []string, every time.Duration) *publisher {
	t.Helper()
	js, err := jetstream.New(n.Pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &publisher{acks: map[string][]ack{}, stop: cancel}
	for _, f := range feeds {
		p.wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				a, err := js.Publish(pctx, "feeds."+f+".k"+strconv.Itoa(i%7), fmt.Appendf(nil, `{"n":%d,"feed":%q}`, i, f))
				pcancel()
				if err == nil {
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
	return p
}

// Stop stops publishing (idempotent).
func (p *publisher) Stop() {
	p.stop()
	p.wg.Wait()
}

func (p *publisher) acked(feed string) []ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acks[feed])
}

// captureLogs copies the origin's log of each (feed, segment) once it has
// closed, before retention drops it.
func captureLogs(ctx context.Context, o *testenv.Origin, feeds []string, segs []int64) func() map[string]map[int64][]byte {
	out := map[string]map[int64][]byte{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			missing := 0
			for _, f := range feeds {
				if out[f] == nil {
					out[f] = map[int64][]byte{}
				}
				feed, ok := o.Hub.Feed(f)
				for _, n := range segs {
					if _, have := out[f][n]; have {
						continue
					}
					missing++
					if !ok {
						continue
					}
					if l, ok := feed.Segment(n); ok && l.State().String() == "closed" {
						out[f][n] = slices.Clone(l.Bytes())
					}
				}
			}
			if missing == 0 {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() map[string]map[int64][]byte { <-done; return out }
}

// segmentResponses is the origin's count of stream-mode responses started
// for feed, all kinds.
func segmentResponses(o *testenv.Origin, feed string) float64 {
	var sum float64
	for _, k := range []string{"live", "held", "finished"} {
		sum += o.Metric("marquee_segment_responses_total", map[string]string{"feed": feed, "kind": k})
	}
	return sum
}

// audience is the outcome of one run of viewers.
type audience struct {
	first   int64 // first segment of the run
	results map[string]*probe.StreamResult
	before  map[string]float64 // origin segment responses before
	after   map[string]float64
	logs    map[string]map[int64][]byte
	elapsed time.Duration
	cpu     time.Duration // this test process (origin and viewers)
	edgeCPU time.Duration // varnishd, if any
}

// runAudience waits for a segment to start, then lets viewers join target at
// random moments over three segments (half on each feed, with cookies,
// query strings and Last-Event-ID mixed in); every viewer watches from the
// segment it joined through the third one.
func runAudience(t *testing.T, s *stack, target string, viewers int, v *Varnish) *audience {
	t.Helper()
	g := s.origin.Hub.Grid()
	// Start at a segment boundary so that the run covers exactly three.
	time.Sleep(time.Until(g.End(g.Index(time.Now())).Add(50 * time.Millisecond)))
	first := g.Index(time.Now())
	segs := []int64{first, first + 1, first + 2}
	a := &audience{first: first, results: map[string]*probe.StreamResult{}, before: map[string]float64{}, after: map[string]float64{}}
	for _, f := range feeds {
		a.before[f] = segmentResponses(s.origin, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := captureLogs(ctx, s.origin, feeds, segs)
	joinBy := g.End(first + 2).Add(-300 * time.Millisecond) // on the grid: the probe's start-up cannot move it
	cpu0 := selfCPU()
	var edge0 time.Duration
	if v != nil {
		edge0, _ = cpuTime(v.cmd.Process.Pid)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, f := range feeds {
		wg.Go(func() {
			res, err := probe.Stream(ctx, probe.Config{
				Base:    target,
				Feed:    f,
				Viewers: viewers / len(feeds),
				JoinBy:  joinBy,
				Random:  true,
				Noise:   true,
			})
			if err != nil {
				t.Errorf("feed %s: %v", f, err)
				return
			}
			mu.Lock()
			a.results[f] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	a.elapsed = time.Since(start)
	a.cpu = selfCPU() - cpu0
	if v != nil {
		edge1, _ := cpuTime(v.cmd.Process.Pid)
		a.edgeCPU = edge1 - edge0
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, f := range feeds {
		a.after[f] = segmentResponses(s.origin, f)
	}
	a.logs = logs()
	return a
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkViewers checks what every viewer received: whole segments from byte
// 0, byte-identical to the origin's segment log, and every update published
// from its first snapshot to its last update, each once, in order.
func checkViewers(t *testing.T, s *stack, a *audience) (observations int) {
	t.Helper()
	for _, f := range feeds {
		res := a.results[f]
		acks := s.pub.acked(f)
		byViewer := map[int][]probe.Observation{}
		for _, o := range res.Observations {
			observations++
			if !o.Clean || o.Status != http.StatusOK {
				t.Errorf("%s viewer %d (%s) segment %d: status %d, %s", f, o.Viewer, o.Variant, o.Segment, o.Status, o.Err)
				continue
			}
			want, ok := a.logs[f][o.Segment]
			if !ok {
				t.Errorf("%s segment %d: origin log not captured", f, o.Segment)
			} else if o.Sum != sha256.Sum256(want) {
				t.Errorf("%s viewer %d (%s) segment %d: %d bytes differ from the origin's %d", f, o.Viewer, o.Variant, o.Segment, o.Bytes, len(want))
			}
			if o.Segment < a.first || o.Segment > a.first+2 {
				t.Errorf("%s viewer %d watched segment %d outside %d..%d", f, o.Viewer, o.Segment, a.first, a.first+2)
			}
			byViewer[o.Viewer] = append(byViewer[o.Viewer], o)
		}
		if t.Failed() {
			return
		}
		if got, want := len(byViewer), res.Config.Viewers; got != want {
			t.Errorf("%s: %d of %d viewers received anything", f, got, want)
		}
		for id, obs := range byViewer {
			if err := checkUpdates(obs, acks, s.origin.Hub.Grid().End(a.first+2)); err != nil {
				t.Errorf("%s viewer %d (%s): %v", f, id, obs[0].Variant, err)
			}
		}
	}
	return observations
}

// checkUpdates checks that one viewer saw every acknowledged update after
// its first snapshot, once and in order, with each later snapshot carrying
// on exactly where the previous segment ended.
func checkUpdates(obs []probe.Observation, acks []ack, lastEnd time.Time) error {
	held := obs[0].SnapshotSeq // the highest sequence this viewer holds
	var seen []uint64
	for i, o := range obs {
		if i > 0 && o.SnapshotSeq != held {
			return fmt.Errorf("segment %d snapshot seq %d, but the previous segment ended at %d", o.Segment, o.SnapshotSeq, held)
		}
		if i > 0 && o.Segment != obs[i-1].Segment+1 {
			return fmt.Errorf("segment %d followed %d", o.Segment, obs[i-1].Segment)
		}
		for _, u := range o.Updates {
			if u.Seq <= held {
				return fmt.Errorf("segment %d: update %d after %d", o.Segment, u.Seq, held)
			}
			held = u.Seq
			seen = append(seen, u.Seq)
		}
	}
	var want []uint64
	for _, a := range acks {
		if a.seq > obs[0].SnapshotSeq && a.seq <= held {
			want = append(want, a.seq)
		}
		// Published well before the last segment ended: must have been seen.
		if a.seq > held && a.at.Before(lastEnd.Add(-1500*time.Millisecond)) {
			return fmt.Errorf("update %d published at %s, before the end of segment %d, never arrived",
				a.seq, a.at.Format("15:04:05.000"), obs[len(obs)-1].Segment)
		}
	}
	if !slices.Equal(seen, want) {
		return fmt.Errorf("saw %d updates, %d published in (%d, %d]: missing or extra %v",
			len(seen), len(want), obs[0].SnapshotSeq, held, symmetricDiff(seen, want))
	}
	return nil
}

func symmetricDiff(a, b []uint64) []uint64 {
	var d []uint64
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			d = append(d, x)
		}
	}
	if len(d) > 10 {
		d = d[:10]
	}
	return d
}

// logAudience reports the measurements of a run.
func logAudience(t *testing.T, name string, a *audience, viewers, observations int) {
	t.Helper()
	var late, hand, beat probe.Durations
	for _, f := range feeds {
		r := a.results[f]
		late = append(late, r.LateTTFB...)
		hand = append(hand, r.Handover...)
		beat = append(beat, r.HeartbeatGap...)
	}
	var responses float64
	for _, f := range feeds {
		responses += a.after[f] - a.before[f]
	}
	t.Logf("%s: %d viewers, %d segment responses received, %.0f origin stream-mode responses (%.3f per viewer) in %s",
		name, viewers, observations, responses, responses/float64(viewers), a.elapsed.Round(time.Millisecond))
	t.Logf("%s: late joiner time to snapshot: %s", name, late)
	t.Logf("%s: hand-over gaps: %s", name, hand)
	t.Logf("%s: heartbeat gaps: %s", name, beat)
	t.Logf("%s: CPU of this process (origin + viewers) %s; edge %s", name, a.cpu.Round(time.Millisecond), a.edgeCPU.Round(time.Millisecond))
}

// TestEdgeCollapse: 1,000 viewers (flag -marquee.viewers) join at random
// moments over three 3-second segments through Varnish with marquee.vcl,
// some with cookies, query strings and Last-Event-ID. The origin starts
// exactly one stream-mode response per feed per segment; every viewer of a
// segment receives the origin's segment bytes from byte 0 under the same
// origin response id; no viewer misses an update. Late joiners' time to
// snapshot is reported, not asserted.
func TestEdgeCollapse(t *testing.T) {
	s := startStack(t)
	v := StartVarnish(t, VarnishOptions{Backend: s.origin.Addr, Threads: *viewersFlag/2 + 100})
	a := runAudience(t, s, v.URL, *viewersFlag, v)
	obs := checkViewers(t, s, a)
	for _, f := range feeds {
		if got, want := a.after[f]-a.before[f], 3.0; got != want {
			t.Errorf("%s: origin started %v stream-mode responses for 3 segments, want %v", f, got, want)
		}
		r := a.results[f]
		for _, st := range r.Segments {
			if st.Responses != 1 || !st.Identical {
				t.Errorf("%s segment %d: %d viewers, %d origin responses, identical %v", f, st.Segment, st.Viewers, st.Responses, st.Identical)
			}
		}
		if !r.Pass {
			t.Errorf("%s: probe verdict: %s", f, r.Verdict)
		}
		for name, c := range r.Variants {
			if c[0] != c[1] {
				t.Errorf("%s: only %d of %d %s responses shared the segment's origin response", f, c[0], c[1], name)
			}
		}
	}
	logAudience(t, "edge", a, *viewersFlag, obs)
	v.LogStats()
}

// TestNoEdgeNoCollapse: the same audience straight at the origin. Every
// viewer's request for every segment is an origin response of its own, with
// its own response id, yet the bytes are the same.
func TestNoEdgeNoCollapse(t *testing.T) {
	s := startStack(t)
	a := runAudience(t, s, s.origin.URL, *viewersFlag, nil)
	obs := checkViewers(t, s, a)
	for _, f := range feeds {
		r := a.results[f]
		if got, want := a.after[f]-a.before[f], float64(len(r.Observations)); got != want {
			t.Errorf("%s: origin started %v stream-mode responses for %v viewer requests", f, got, want)
		}
		for _, st := range r.Segments {
			if st.Responses != st.Viewers || !st.Identical {
				t.Errorf("%s segment %d: %d viewers, %d origin responses, identical %v", f, st.Segment, st.Viewers, st.Responses, st.Identical)
			}
		}
		if r.Pass {
			t.Errorf("%s: probe passed straight at the origin: %s", f, r.Verdict)
		}
	}
	logAudience(t, "no edge", a, *viewersFlag, obs)
}
