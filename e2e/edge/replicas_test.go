//go:build unix

package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/internal/app"
	"marquee/internal/natstest"
	"marquee/internal/testenv"
	"marquee/segmenter"
	"marquee/sse"
	"marquee/wire"
)

// TestEdgeTwoReplicas: a Varnish with two origin replicas as round-robin
// backends, both on one R3 stream of a three-node cluster. Viewers of a
// segment get the bytes both replicas wrote (identical), the segment costs
// one origin response in all, and a parts-mode viewer whose part fetches
// alternate between the replicas (the director's round robin) applies
// every update once with no gap and ends with the origin's state.
func TestEdgeTwoReplicas(t *testing.T) {
	c := natstest.StartCluster(t)
	n := testenv.ConnectNATS(t, c.URL())
	opts := testenv.Options{SegmentLength: 4 * time.Second, PartLength: 500 * time.Millisecond,
		Config: func(cfg *app.Config) { cfg.NATS.StreamReplicas = 3 }}
	o := [2]*testenv.Origin{testenv.StartOrigin(t, n, opts), testenv.StartOrigin(t, n, opts)}
	v := StartVarnish(t, VarnishOptions{Backends: []string{o[0].Addr, o[1].Addr}, VCL: "marquee-buffered.vcl"})
	js, _ := jetstream.New(n.Pub)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked []uint64
	var mu sync.Mutex
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(31 * time.Millisecond):
			}
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			ack, err := js.Publish(pctx, fmt.Sprintf("feeds.prices.k%d", i%5), fmt.Appendf(nil, `{"i":%d}`, i))
			pcancel()
			if err == nil {
				mu.Lock()
				acked = append(acked, ack.Sequence)
				mu.Unlock()
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	// Both replicas know the feed (its first message is applied) before the
	// segment is chosen: a part request to one that does not is a 404.
	testenv.Eventually(t, 20*time.Second, func() error {
		for i, oi := range o {
			if _, ok := oi.Hub.Feed("prices"); !ok {
				return fmt.Errorf("replica %d has no feed prices yet", i)
			}
		}
		return nil
	})

	g := o[0].Hub.Grid()
	seg := g.Index(time.Now()) + 1
	before := originSegmentResponses(o)

	// Parts mode through the buffering edge, from part 0 of seg to its end.
	time.Sleep(time.Until(g.Start(seg).Add(-250 * time.Millisecond)))
	var got struct {
		seq     uint64
		entries map[string]json.RawMessage
		applied []uint64
	}
	parts := int(4 * time.Second / (500 * time.Millisecond))
	for k := range parts {
		kind := "parts"
		if k == 0 {
			kind = "upto"
		}
		body := mustGet(t, ctx, fmt.Sprintf("%s/v1/feeds/prices/segments/%d/%s/%d", v.URL, seg, kind, k))
		d := sse.NewDecoder(bytes.NewReader(body))
		for {
			ev, err := d.Next()
			if err != nil {
				break
			}
			switch ev.Type {
			case wire.EventSnapshot:
				var s wire.Snapshot
				json.Unmarshal(ev.Data, &s)
				got.seq, got.entries = s.Seq, s.Entries
			case wire.EventUpdate:
				var u wire.Update
				json.Unmarshal(ev.Data, &u)
				if u.Prev > got.seq {
					t.Fatalf("part %d: gap: update %d has prev %d, held %d", k, u.Seq, u.Prev, got.seq)
				}
				if u.Seq > got.seq {
					got.entries[u.Key] = u.Value
					got.seq = u.Seq
					got.applied = append(got.applied, u.Seq)
				}
			}
		}
	}
	// The whole segment in stream mode through the same edge (now a hit):
	// the bytes of both replicas.
	body := mustGet(t, ctx, fmt.Sprintf("%s/v1/feeds/prices/segments/%d", v.URL, seg))
	var logs [2][]byte
	for i, oi := range o {
		f, _ := oi.Hub.Feed("prices")
		l, ok := f.Segment(seg)
		if !ok || l.State() != segmenter.Closed {
			t.Fatalf("replica %d: segment %d not closed", i, seg)
		}
		logs[i] = l.Bytes()
	}
	if !bytes.Equal(logs[0], logs[1]) {
		t.Fatalf("replicas wrote different bytes for segment %d", seg)
	}
	if !bytes.Equal(body, logs[0]) {
		t.Errorf("edge served %d bytes for segment %d, the replicas wrote %d", len(body), seg, len(logs[0]))
	}
	after := originSegmentResponses(o)
	if d := after - before; d != 1 {
		t.Errorf("segment %d cost %v origin stream responses over both replicas, want 1", seg, d)
	}
	parts0, parts1 := partResponses(o[0]), partResponses(o[1])
	if parts0 == 0 || parts1 == 0 {
		t.Errorf("round robin: part responses %v and %v; both replicas should have served", parts0, parts1)
	}
	// Every acknowledged update of the segment reached the viewer once.
	mu.Lock()
	defer mu.Unlock()
	seen := map[uint64]int{}
	for _, s := range got.applied {
		seen[s]++
	}
	first, last := uint64(0), got.seq
	if len(got.applied) > 0 {
		first = got.applied[0]
	}
	for _, s := range acked {
		if s >= first && s <= last && seen[s] != 1 {
			t.Errorf("update %d applied %d times", s, seen[s])
		}
	}
	t.Logf("two replicas behind one edge: %d updates applied in segment %d, part responses %v + %v", len(got.applied), seg, parts0, parts1)
}

func mustGet(t *testing.T, ctx context.Context, url string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

func originSegmentResponses(o [2]*testenv.Origin) float64 {
	var sum float64
	for _, oi := range o {
		for _, kind := range []string{"live", "held", "finished"} {
			sum += oi.Metric("marquee_segment_responses_total", map[string]string{"feed": "prices", "kind": kind})
		}
	}
	return sum
}

func partResponses(o *testenv.Origin) float64 {
	return o.Metric("marquee_part_responses_total", map[string]string{"feed": "prices", "kind": "part"}) +
		o.Metric("marquee_part_responses_total", map[string]string{"feed": "prices", "kind": "upto"})
}
