package replicas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
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

const (
	segLen  = 4 * time.Second
	partLen = 500 * time.Millisecond
	feedN   = "prices"
)

// topology is a three-node cluster, a publisher and two replicas; the
// second replica reaches NATS through a proxy that can be paused.
type topology struct {
	c     *natstest.Cluster
	n     *testenv.NATS
	proxy *testenv.Proxy
	o     [2]*testenv.Origin
	pub   *publisher
}

func startTopology(t *testing.T, replicas int, edit ...func(*app.Config)) *topology {
	t.Helper()
	c := natstest.StartCluster(t)
	n := testenv.ConnectNATS(t, c.URL())
	tp := &topology{c: c, n: n, proxy: testenv.StartProxy(t, c.ClientURL(1))}
	opts := testenv.Options{SegmentLength: segLen, PartLength: partLen, Log: os.Getenv("MARQUEE_TEST_LOG") != "", Config: func(cfg *app.Config) {
		cfg.NATS.StreamReplicas = replicas
		for _, e := range edit {
			e(cfg)
		}
	}}
	tp.o[0] = testenv.StartOrigin(t, n, opts)
	opts2 := opts
	opts2.Config = func(cfg *app.Config) {
		opts.Config(cfg)
		cfg.NATS.URL = tp.proxy.URL()
	}
	tp.o[1] = testenv.StartOrigin(t, n, opts2)
	// Faults are injected into a settled cluster: every node has its
	// replica of the stream (an R3 group killed within its first moments
	// can take JetStream a minute to recover, which is not what these
	// tests are about).
	c.WaitStreamReady("FEEDS")
	return tp
}

// publisher publishes price updates through JetStream every period and
// remembers every acknowledged stream sequence.
type publisher struct {
	t    *testing.T
	js   jetstream.JetStream
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	acked  []uint64
	ackAt  []time.Time // when each of acked was acknowledged
	failed int
	last   time.Time // time of the last acknowledgement
}

// firstAckAfter returns the sequence of the first acknowledgement after t,
// or false when there is none yet.
func (p *publisher) firstAckAfter(t time.Time) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, at := range p.ackAt {
		if at.After(t) {
			return p.acked[i], true
		}
	}
	return 0, false
}

func startPublisher(t *testing.T, n *testenv.NATS, every time.Duration) *publisher {
	js, err := jetstream.New(n.Pub)
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{t: t, js: js, stop: make(chan struct{})}
	p.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ack, err := js.Publish(ctx, fmt.Sprintf("feeds.%s.k%d", feedN, i%7), fmt.Appendf(nil, `{"i":%d}`, i))
			cancel()
			p.mu.Lock()
			if err != nil {
				p.failed++
			} else {
				p.acked = append(p.acked, ack.Sequence)
				p.last = time.Now()
				p.ackAt = append(p.ackAt, p.last)
			}
			p.mu.Unlock()
		}
	})
	t.Cleanup(p.Stop)
	return p
}

// Stop stops publishing (idempotent).
func (p *publisher) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *publisher) seqs() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

func fetch(ctx context.Context, url string) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func events(b []byte) ([]sse.Event, error) {
	d := sse.NewDecoder(bytes.NewReader(b))
	var out []sse.Event
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// viewer is a client's state, with the rule client.js follows: a
// snapshot replaces the state; an update applies when its seq is above the
// held one, and shows a gap when its prev is above it.
type viewer struct {
	seq       uint64
	entries   map[string]json.RawMessage
	applied   []uint64 // update seqs applied
	snapshots []uint64 // seqs of snapshots taken (join, repairs, resyncs)
	gaps      int
}

// feed applies the events of one response; it returns false at the first
// gap (the rest of the response is not applied: the caller repairs).
func (v *viewer) feed(evs []sse.Event) (ok bool, err error) {
	for _, ev := range evs {
		switch ev.Type {
		case wire.EventSnapshot:
			var s wire.Snapshot
			if err := json.Unmarshal(ev.Data, &s); err != nil {
				return false, err
			}
			v.seq, v.entries = s.Seq, s.Entries
			v.snapshots = append(v.snapshots, s.Seq)
		case wire.EventUpdate:
			var u wire.Update
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				return false, err
			}
			if u.Prev > v.seq {
				v.gaps++
				return false, nil
			}
			if u.Seq <= v.seq {
				continue
			}
			if u.Deleted() {
				delete(v.entries, u.Key)
			} else {
				v.entries[u.Key] = u.Value
			}
			v.seq = u.Seq
			v.applied = append(v.applied, u.Seq)
		}
	}
	return true, nil
}

// holes returns the acknowledged sequences above the viewer's first
// snapshot and at most its final seq that it neither applied nor got
// folded into a later snapshot.
func (v *viewer) holes(acked []uint64) []uint64 {
	if len(v.snapshots) == 0 {
		return nil
	}
	got := map[uint64]bool{}
	for _, s := range v.applied {
		got[s] = true
	}
	var out []uint64
	for _, s := range acked {
		if s <= v.snapshots[0] || s > v.seq || got[s] {
			continue
		}
		covered := false
		for _, snap := range v.snapshots[1:] {
			if snap >= s {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

// snapshotOf returns the origin's current state of the feed.
func snapshotOf(t *testing.T, o *testenv.Origin) wire.Snapshot {
	t.Helper()
	var s wire.Snapshot
	testenv.GetJSON(t, o.URL+"/v1/feeds/"+feedN+"/snapshot", &s)
	return s
}

func readyz(o *testenv.Origin) (int, string) {
	code, b, err := fetch(context.Background(), o.URL+"/readyz")
	if err != nil {
		return 0, err.Error()
	}
	return code, string(b)
}

func partURL(o *testenv.Origin, n int64, k int, upto bool) string {
	kind := "parts"
	if upto {
		kind = "upto"
	}
	return o.URL + "/v1/feeds/" + feedN + "/segments/" + strconv.FormatInt(n, 10) + "/" + kind + "/" + strconv.Itoa(k)
}

func newRequest(ctx context.Context, url, lastEventID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err == nil && lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	return req, err
}

func doRequest(req *http.Request) (*http.Response, error) { return http.DefaultClient.Do(req) }

// readEvents reads events until the response ends or its context does,
// and keeps the id of the last event that had one in *last.
func readEvents(resp *http.Response, last *string) []sse.Event {
	defer resp.Body.Close()
	d := sse.NewDecoder(resp.Body)
	var out []sse.Event
	for {
		ev, err := d.Next()
		if err != nil {
			return out
		}
		if ev.ID != "" {
			*last = ev.ID
		}
		out = append(out, ev)
	}
}
