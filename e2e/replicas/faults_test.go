package replicas

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/internal/app"
	"marquee/internal/natstest"
	"marquee/internal/testenv"
	"marquee/sse"
	"marquee/wire"
)

// readiness records every /readyz transition of an origin until stopped.
type readiness struct {
	mu      sync.Mutex
	changes []string // "t+1.2s 503: reason"
	stop    chan struct{}
	done    chan struct{}
}

func watchReadiness(o *testenv.Origin, t0 time.Time) *readiness {
	r := &readiness{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		last := -1
		for {
			code, body := readyz(o)
			if code != last {
				r.mu.Lock()
				r.changes = append(r.changes, fmt.Sprintf("t+%.1fs %d %s", time.Since(t0).Seconds(), code, strings.TrimSpace(body)))
				r.mu.Unlock()
				last = code
			}
			select {
			case <-r.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *readiness) end() []string {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes
}

// appliedSeq returns the highest sequence origin o has folded in.
func appliedSeq(o *testenv.Origin) uint64 {
	f, ok := o.Hub.Feed(feedN)
	if !ok {
		return 0
	}
	return f.Seq()
}

// TestStreamLeaderKilled: the node leading the R3 stream crashes and comes
// back. Both replicas resume consuming, report the stall on /readyz while
// it lasts longer than the stall timeout, apply every acknowledged update,
// and end in the same state. The measured stall is logged.
func TestStreamLeaderKilled(t *testing.T) {
	tp := startTopology(t, 3)
	tp.pub = startPublisher(t, tp.n, 20*time.Millisecond)
	testenv.Eventually(t, 10*time.Second, func() error {
		if appliedSeq(tp.o[0]) == 0 || appliedSeq(tp.o[1]) == 0 {
			return fmt.Errorf("nothing applied yet")
		}
		return nil
	})
	leader := tp.c.StreamLeader("FEEDS")
	if leader < 0 {
		t.Fatal("no stream leader")
	}
	t0 := time.Now()
	watch := [2]*readiness{watchReadiness(tp.o[0], t0), watchReadiness(tp.o[1], t0)}
	tp.c.Kill(leader)
	// A new leader is elected; consumption resumes on both replicas.
	var elected time.Duration
	testenv.Eventually(t, 60*time.Second, func() error {
		if l := tp.c.StreamLeader("FEEDS"); l < 0 || l == leader {
			return fmt.Errorf("no new leader")
		}
		if elected == 0 {
			elected = time.Since(t0)
		}
		return nil
	})
	var resumed [2]time.Duration
	testenv.Eventually(t, 60*time.Second, func() error {
		for i, o := range tp.o {
			if s, ok := tp.pub.firstAckAfter(t0); ok && resumed[i] == 0 && appliedSeq(o) >= s {
				resumed[i] = time.Since(t0)
			}
		}
		if resumed[0] == 0 || resumed[1] == 0 {
			return fmt.Errorf("not resumed: %v", resumed)
		}
		return nil
	})
	tp.c.Restart(leader)
	time.Sleep(2 * time.Second)
	tp.pub.Stop()
	acked := tp.pub.seqs()
	last := acked[len(acked)-1]
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, o := range tp.o {
			if got := appliedSeq(o); got < last {
				return fmt.Errorf("replica %d at %d, last ack %d", i, got, last)
			}
			if code, body := readyz(o); code != 200 {
				return fmt.Errorf("replica %d readyz %d %s", i, code, body)
			}
		}
		return nil
	})
	a, b := snapshotOf(t, tp.o[0]), snapshotOf(t, tp.o[1])
	if a.Seq != b.Seq || fmt.Sprint(a.Entries) != fmt.Sprint(b.Entries) {
		t.Errorf("replicas differ after the failover: seq %d vs %d", a.Seq, b.Seq)
	}
	for i := range watch {
		changes := watch[i].end()
		t.Logf("replica %d /readyz: %s", i, strings.Join(changes, "; "))
	}
	t.Logf("leader node %d killed: new stream leader after %s; replicas consuming current messages again after %s and %s (stall timeout %s)",
		leader, elected.Round(10*time.Millisecond), resumed[0].Round(10*time.Millisecond), resumed[1].Round(10*time.Millisecond), "5s")
}

// TestStreamRecreated: the operator manages the stream (marquee must not
// create it) and deletes it: both replicas say not ready, stream missing.
// It is created again, so sequences restart at 1. Both replicas notice,
// rebuild their state from the new stream without a restart, write a
// snapshot of it into the open segment at once, and are ready again.
func TestStreamRecreated(t *testing.T) {
	c := natstest.StartCluster(t)
	n := testenv.ConnectNATS(t, c.URL())
	js0, _ := jetstream.New(n.Pub)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	if _, err := js0.CreateStream(cctx, jetstream.StreamConfig{Name: "FEEDS", Subjects: []string{"feeds.>"}, Replicas: 3, MaxMsgsPerSubject: 16, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	c.WaitStreamReady("FEEDS")
	tp := &topology{c: c, n: n}
	opts := testenv.Options{SegmentLength: 10 * time.Second, PartLength: partLen, Config: func(cfg *app.Config) { cfg.NATS.CreateStream = false }}
	tp.o[0] = testenv.StartOrigin(t, n, opts)
	tp.o[1] = testenv.StartOrigin(t, n, opts)
	js, _ := jetstream.New(tp.n.Pub)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 30 {
		if _, err := js.Publish(ctx, fmt.Sprintf("feeds.%s.old%d", feedN, i), []byte(`{"v":"old"}`)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for i, o := range tp.o {
			if appliedSeq(o) < 30 {
				return fmt.Errorf("replica %d at %d", i, appliedSeq(o))
			}
		}
		return nil
	})
	// A stream-mode viewer of the current segment on each replica.
	var streams [2]*sse.Decoder
	for i, o := range tp.o {
		d := o.Descriptor(feedN)
		req, _ := newRequest(ctx, o.URL+d.URL, "")
		resp, err := doRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		streams[i] = sse.NewDecoder(resp.Body)
	}
	if err := js.DeleteStream(ctx, "FEEDS"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		for i, o := range tp.o {
			if code, body := readyz(o); code != 503 || !strings.Contains(body, "missing") {
				return fmt.Errorf("replica %d readyz %d %s", i, code, body)
			}
		}
		return nil
	})
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FEEDS", Subjects: []string{"feeds.>"}, Replicas: 3, MaxMsgsPerSubject: 16, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	tp.c.WaitStreamReady("FEEDS")
	for i := range 5 {
		if _, err := js.Publish(ctx, fmt.Sprintf("feeds.%s.new%d", feedN, i), []byte(`{"v":"new"}`)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, o := range tp.o {
			s := snapshotOf(t, o)
			if s.Seq != 5 || len(s.Entries) != 5 {
				return fmt.Errorf("replica %d: seq %d, %d entries", i, s.Seq, len(s.Entries))
			}
			if code, body := readyz(o); code != 200 {
				return fmt.Errorf("replica %d readyz %d %s", i, code, body)
			}
		}
		return nil
	})
	// The open segment carried the rebuilt state at once: a snapshot of the
	// new stream (lower sequence) after the old state, before the segment end.
	for i, d := range streams {
		first := true
		for {
			ev, err := d.Next()
			if err != nil {
				t.Fatalf("replica %d: stream ended before the resync snapshot: %v", i, err)
			}
			if ev.Type == wire.EventNext {
				t.Fatalf("replica %d: segment ended without a resync snapshot", i)
			}
			if ev.Type != wire.EventSnapshot {
				continue
			}
			if first { // the segment's own
				first = false
				continue
			}
			var s wire.Snapshot
			if err := json.Unmarshal(ev.Data, &s); err != nil {
				t.Fatal(err)
			}
			for k := range s.Entries {
				if strings.HasPrefix(k, "old") {
					t.Errorf("replica %d: resync snapshot (id %s) still holds %s", i, ev.ID, k)
				}
			}
			if s.Seq > 5 {
				t.Errorf("replica %d: resync snapshot at seq %d, want the new stream's (at most 5)", i, s.Seq)
			}
			t.Logf("replica %d: resync snapshot id %s (%d keys) in the open segment", i, ev.ID, len(s.Entries))
			break
		}
	}
	for i, o := range tp.o {
		if got := o.Metric("marquee_feed_reloads_total", map[string]string{"reason": "recreated"}); got < 1 {
			t.Errorf("replica %d: reloads{recreated} = %v", i, got)
		}
	}
}

// TestConnectedNodeKilled: the node the second replica is connected to
// (through the proxy, so it knows no other address but those the cluster
// told it) crashes. The replica reconnects to another node, re-creates its
// consumer and applies every acknowledged update; the other replica is
// undisturbed.
func TestConnectedNodeKilled(t *testing.T) {
	tp := startTopology(t, 3)
	tp.pub = startPublisher(t, tp.n, 20*time.Millisecond)
	testenv.Eventually(t, 10*time.Second, func() error {
		if appliedSeq(tp.o[0]) < 20 || appliedSeq(tp.o[1]) < 20 {
			return fmt.Errorf("replicas at %d and %d", appliedSeq(tp.o[0]), appliedSeq(tp.o[1]))
		}
		return nil
	})
	t0 := time.Now()
	watch := watchReadiness(tp.o[1], t0)
	tp.c.Kill(1) // the proxy's target
	var resumed time.Duration
	testenv.Eventually(t, 60*time.Second, func() error {
		s, ok := tp.pub.firstAckAfter(t0.Add(500 * time.Millisecond))
		if !ok || appliedSeq(tp.o[1]) < s {
			return fmt.Errorf("replica 2 not consuming current messages (at %d)", appliedSeq(tp.o[1]))
		}
		resumed = time.Since(t0)
		return nil
	})
	tp.pub.Stop()
	acked := tp.pub.seqs()
	last := acked[len(acked)-1]
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, o := range tp.o {
			if got := appliedSeq(o); got < last {
				return fmt.Errorf("replica %d at %d, last ack %d", i, got, last)
			}
		}
		return nil
	})
	a, b := snapshotOf(t, tp.o[0]), snapshotOf(t, tp.o[1])
	if a.Seq != b.Seq || fmt.Sprint(a.Entries) != fmt.Sprint(b.Entries) {
		t.Errorf("replicas differ: seq %d vs %d", a.Seq, b.Seq)
	}
	t.Logf("node of replica 2 killed: consuming current messages again after %s; /readyz: %s", resumed.Round(10*time.Millisecond), strings.Join(watch.end(), "; "))
}
