package feed

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/internal/natstest"
)

// clusterConfig is the test config for a source on cluster c with its own
// stream and subject prefix.
func clusterConfig(c *natstest.Cluster, stream, prefix string) Config {
	cfg := testConfig(c.URL())
	cfg.Stream, cfg.SubjectPrefix = stream, prefix
	return cfg
}

// TestJetStreamStreamSettings: on a three-node cluster, what the source does
// to the stream at start: an existing stream is used as it is; with
// ManageStream it gets marquee's settings, replicas included; a missing one
// is created with StreamReplicas.
func TestJetStreamStreamSettings(t *testing.T) {
	c := natstest.StartCluster(t)
	pub := newPublisher(t, c.URL())
	js := pub.js

	check := func(t *testing.T, cfg Config) (*JetStreamSource, *Metrics) {
		t.Helper()
		sink := newFakeSink()
		src, m, _ := startJS(t, cfg, sink)
		waitFor(t, "loaded", func() bool { return src.Status().Ready() })
		seq := pub.pub(cfg.SubjectPrefix+".prices.AAPL", `{"p":1}`)
		waitFor(t, "message applied", func() bool { return sink.has(seq) })
		return src, m
	}

	t.Run("existing stream left as it is", func(t *testing.T) {
		createStream(t, js, jetstream.StreamConfig{
			Name: "KEEP", Subjects: []string{"keep.>"}, Replicas: 3, MaxMsgsPerSubject: 5, MaxAge: time.Hour,
		})
		c.WaitStreamReady("KEEP")
		before := streamInfo(t, js, "KEEP")
		cfg := clusterConfig(c, "KEEP", "keep") // CreateStream true, ManageStream false, StreamReplicas 1
		check(t, cfg)
		after := streamInfo(t, js, "KEEP")
		if after.Config.Replicas != 3 || after.Config.MaxMsgsPerSubject != 5 || after.Config.MaxAge != time.Hour {
			t.Errorf("stream changed: replicas %d, max msgs per subject %d, max age %v; want 3, 5, 1h",
				after.Config.Replicas, after.Config.MaxMsgsPerSubject, after.Config.MaxAge)
		}
		if !after.Created.Equal(before.Created) {
			t.Error("stream recreated")
		}
	})

	t.Run("managed stream updated", func(t *testing.T) {
		createStream(t, js, jetstream.StreamConfig{
			Name: "MANAGE", Subjects: []string{"manage.>"}, Replicas: 1, MaxMsgsPerSubject: 5, MaxAge: time.Hour,
		})
		c.WaitStreamReady("MANAGE")
		cfg := clusterConfig(c, "MANAGE", "manage")
		cfg.ManageStream, cfg.StreamReplicas = true, 3
		check(t, cfg)
		after := streamInfo(t, js, "MANAGE")
		if after.Config.Replicas != 3 || after.Config.MaxMsgsPerSubject != 16 {
			t.Errorf("managed stream: replicas %d, max msgs per subject %d; want 3, 16", after.Config.Replicas, after.Config.MaxMsgsPerSubject)
		}
		if after.Config.MaxAge != time.Hour {
			t.Errorf("managed stream lost its max age: %v", after.Config.MaxAge)
		}
	})

	t.Run("stream created with replicas", func(t *testing.T) {
		cfg := clusterConfig(c, "CREATED", "created")
		cfg.StreamReplicas = 3
		check(t, cfg)
		info := streamInfo(t, js, "CREATED")
		if info.Config.Replicas != 3 || info.Config.MaxMsgsPerSubject != 16 || len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != "created.>" {
			t.Errorf("created stream config = %+v", info.Config)
		}
		if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("created stream cluster info = %+v, want a leader and 2 replicas", info.Cluster)
		}
	})

	t.Run("too many replicas", func(t *testing.T) {
		cfg := clusterConfig(c, "TOOMANY", "toomany")
		cfg.StreamReplicas = 5
		sink := newFakeSink()
		src, _, _ := startJS(t, cfg, sink)
		waitFor(t, "error reported", func() bool { return src.Status().Err != "" })
		st := src.Status()
		if st.Ready() {
			t.Fatalf("ready without a stream: %+v", st)
		}
		t.Logf("reason: %s", st.Reason())
	})
}

// acked is one message the background publisher got acknowledged.
type acked struct {
	seq uint64
	at  time.Time
}

// steadyPublisher publishes a message every interval until stopped,
// retrying while the stream has no leader, and records the acks.
type steadyPublisher struct {
	pub  *publisher
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex // guards acks
	acks []acked
}

func startSteadyPublisher(t *testing.T, url, prefix string, every time.Duration) *steadyPublisher {
	p := &steadyPublisher{pub: newPublisher(t, url), stop: make(chan struct{})}
	p.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			// 64 subjects: the stream keeps 16 per subject, 1024 in all,
			// more than are published during a stall, so that the
			// per-subject limit discards nothing the source has not read.
			ack, err := p.pub.js.Publish(ctx, fmt.Sprintf("%s.ticks.k%d", prefix, i%64), fmt.Appendf(nil, `{"i":%d}`, i))
			cancel()
			if err != nil {
				continue // no leader yet: the next one
			}
			p.mu.Lock()
			p.acks = append(p.acks, acked{ack.Sequence, time.Now()})
			p.mu.Unlock()
		}
	})
	t.Cleanup(p.close)
	return p
}

func (p *steadyPublisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *steadyPublisher) last() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.acks) == 0 {
		return 0
	}
	return p.acks[len(p.acks)-1].seq
}

// firstAckAt returns the first ack at or after t.
func (p *steadyPublisher) firstAckAt(t time.Time) (acked, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.acks {
		if !a.at.Before(t) {
			return a, true
		}
	}
	return acked{}, false
}

// failover is what one leader failure cost.
type failover struct {
	how       string
	newLeader time.Duration // from the failure until a new stream leader was seen
	newMeta   time.Duration // until a new meta leader was seen, if the node led the meta layer
	afterBoth time.Duration // from the later of the two until the source applied a message
	stall     time.Duration // the longest time without a message applied, around the failure
	lag       time.Duration // from the first ack after the new leader until the source applied that message
	stallSeen bool          // Status reported Stalled meanwhile
}

// TestJetStreamSourceLeaderFailover kills (crash-like) or stops
// (gracefully) the stream leader of an R3 stream a few times while a
// publisher keeps publishing, and measures how long consuming stalls. It
// asserts that consuming resumes, that Stalled is reported during a crash's
// stall and cleared after it, and that every acknowledged message is applied
// once, in order, without a reload; the durations are logged.
func TestJetStreamSourceLeaderFailover(t *testing.T) {
	c := natstest.StartCluster(t)
	cfg := clusterConfig(c, "FEEDS", "feeds")
	cfg.StreamReplicas = 3
	cfg.StallTimeout = time.Second
	sink := newFakeSink()
	src, m, _ := startJS(t, cfg, sink)
	waitFor(t, "loaded", func() bool { return src.Status().Ready() })
	leader := c.WaitStreamReady("FEEDS")
	pub := startSteadyPublisher(t, c.URL(), "feeds", 20*time.Millisecond)
	waitFor(t, "steady consumption", func() bool { s := pub.last(); return s > 20 && sink.has(s) })

	var results []failover
	for round, how := range []string{"kill", "kill", "kill", "stop", "stop"} {
		before := pub.last()
		waitFor(t, "caught up before the failure", func() bool { return sink.has(before) })
		f := failover{how: how}
		var (
			watchStop = make(chan struct{})
			watch     sync.WaitGroup
			stalled   atomic.Bool
		)
		watch.Go(func() {
			for {
				select {
				case <-watchStop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if src.Status().Stalled {
					stalled.Store(true)
				}
			}
		})
		meta := c.MetaLeader()
		start := time.Now()
		if how == "kill" {
			c.Kill(leader)
		} else {
			c.Stop(leader)
		}
		next := -1
		for next < 0 {
			if time.Since(start) > 60*time.Second {
				t.Fatalf("round %d: no new stream leader", round)
			}
			time.Sleep(5 * time.Millisecond)
			next = c.StreamLeader("FEEDS")
		}
		leaderAt := time.Now()
		f.newLeader = leaderAt.Sub(start)
		bothAt := leaderAt
		if meta == leader {
			for m := c.MetaLeader(); m < 0 || m == leader; m = c.MetaLeader() {
				if time.Since(start) > 60*time.Second {
					t.Fatalf("round %d: no new meta leader", round)
				}
				time.Sleep(5 * time.Millisecond)
			}
			f.newMeta = time.Since(start)
			if m := start.Add(f.newMeta); m.After(bothAt) {
				bothAt = m
			}
		}
		var first acked
		waitForLong(t, 60*time.Second, "a message acknowledged after the new leader", func() bool {
			var ok bool
			first, ok = pub.firstAckAt(leaderAt)
			return ok
		})
		waitForLong(t, 60*time.Second, "consuming resumed", func() bool { return sink.has(first.seq) })
		a, _ := sink.find(first.seq)
		f.lag = a.at.Sub(first.at)
		if b, ok := sink.firstAppliedAt(bothAt); ok {
			f.afterBoth = b.Sub(bothAt)
		}
		f.stall = sink.maxGap(start.Add(-time.Second), a.at)
		waitForLong(t, 30*time.Second, "Stalled cleared", func() bool { st := src.Status(); return !st.Stalled && st.Ready() })
		close(watchStop)
		watch.Wait()
		f.stallSeen = stalled.Load()
		results = append(results, f)
		metaNote := "it did not lead the meta layer"
		if meta == leader {
			metaNote = fmt.Sprintf("new meta leader after %v", f.newMeta.Round(time.Millisecond))
		}
		t.Logf("round %d: %s node %d: new stream leader (node %d) after %v, %s; longest time without a message applied %v; "+
			"the first message acknowledged after the new stream leader applied %v after its ack; first message applied %v after both leaders were there; Stalled reported: %v",
			round, how, leader, next, f.newLeader.Round(time.Millisecond), metaNote, f.stall.Round(time.Millisecond), f.lag.Round(time.Millisecond),
			f.afterBoth.Round(time.Millisecond), f.stallSeen)
		if how == "kill" && f.stall > 2*cfg.StallTimeout && !f.stallSeen {
			t.Errorf("round %d: no Stalled reported during a %v stall (stall timeout %v)", round, f.stall.Round(time.Millisecond), cfg.StallTimeout)
		}
		// A generous bound on the target (consuming within 5 s of a
		// new stream leader); the measured figure is what the log shows.
		if f.lag > 15*time.Second {
			t.Errorf("round %d: consuming resumed %v after the stream took messages again", round, f.lag)
		}
		c.Restart(leader)
		c.WaitStreamReady("FEEDS")
		leader = c.StreamLeader("FEEDS")
	}
	pub.close()
	last := pub.last()
	waitForLong(t, 30*time.Second, "every acknowledged message applied", func() bool { return sink.has(last) })
	checkNoDoubles(t, sink.applied())
	pub.mu.Lock()
	missing := 0
	for _, a := range pub.acks {
		if !sink.has(a.seq) {
			missing++
		}
	}
	n := len(pub.acks)
	pub.mu.Unlock()
	if missing > 0 {
		t.Errorf("%d of %d acknowledged messages never applied", missing, n)
	}
	if got := testutil.ToFloat64(m.reloads[ReloadGap]) + testutil.ToFloat64(m.reloads[ReloadRecreated]); got != 0 {
		t.Errorf("%v reloads during failovers", got)
	}
	if got := testutil.ToFloat64(m.skipped); got != 0 {
		t.Errorf("%v sequences skipped during failovers", got)
	}
	summarize(t, results)
}

func summarize(t *testing.T, rs []failover) {
	type agg struct{ stall, lag, leader, both []time.Duration }
	by := map[string]*agg{}
	for _, r := range rs {
		a := by[r.how]
		if a == nil {
			a = &agg{}
			by[r.how] = a
		}
		a.stall, a.lag, a.leader, a.both = append(a.stall, r.stall), append(a.lag, r.lag), append(a.leader, r.newLeader), append(a.both, r.afterBoth)
	}
	span := func(ds []time.Duration) string {
		slices.Sort(ds)
		return fmt.Sprintf("%v..%v", ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
	for how, a := range by {
		t.Logf("%s (%d rounds): new stream leader after %s; stall %s; lag behind the first ack after the new stream leader %s; first message applied after stream and meta leader were back %s",
			how, len(a.stall), span(a.leader), span(a.stall), span(a.lag), span(a.both))
	}
}

// waitForLong is waitFor with a longer bound, for cluster elections.
func waitForLong(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
