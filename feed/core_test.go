package feed

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newCoreSource(t *testing.T, mod func(*Config)) (*CoreSource, *fakeSink, *Metrics, Config) {
	t.Helper()
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	cfg.JetStream = false
	if mod != nil {
		mod(&cfg)
	}
	m, _ := newTestMetrics(t)
	sink := newFakeSink()
	src, err := NewCoreSource(cfg, connect(t, cfg, m), sink, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return src, sink, m, cfg
}

func TestCoreSourceIncreasingIDs(t *testing.T) {
	before := uint64(time.Now().UnixMicro())
	src, sink, m, cfg := newCoreSource(t, nil)
	run(t, src)
	waitFor(t, "subscribed", func() bool { return src.Status().Ready() })
	if got := testutil.ToFloat64(m.loaded); got != 1 {
		t.Fatalf("marquee_feed_loaded = %v", got)
	}

	pub := connect(t, cfg, nil)
	const n = 50
	for i := range n {
		if err := pub.Publish(fmt.Sprintf("feeds.prices.k%d", i%7), fmt.Appendf(nil, `{ "i": %d }`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish("feeds.prices.k0", nil); err != nil { // delete
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all messages", func() bool { return len(sink.applied()) == n+1 })
	waitFor(t, "Sink.Loaded called once (subscribed)", func() bool { return sink.loadedCalls() == 1 })
	log := sink.applied()
	checkNoDoubles(t, log)
	if log[0].u.Seq <= before {
		t.Errorf("first id %d not above the time %d in µs before the source was made", log[0].u.Seq, before)
	}
	for i, a := range log[:n] {
		if want := fmt.Sprintf(`{"i":%d}`, i); string(a.u.Value) != want || a.u.Time.IsZero() {
			t.Fatalf("update %d = %s at %v, want %s", i, a.u.Value, a.u.Time, want)
		}
	}
	if last := log[n]; last.u.Value != nil || last.u.Key != "k0" {
		t.Errorf("delete applied as %+v", last.u)
	}

	// A bad message is counted and dropped; the next one is served.
	if err := pub.Publish("feeds.prices.k1", []byte(`[1]`)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("feeds.prices.k1", []byte(`{"after":"bad"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "message after bad one", func() bool {
		u, ok := sink.get("prices", "k1")
		return ok && string(u.Value) == `{"after":"bad"}`
	})
	if got := testutil.ToFloat64(m.rejected[ReasonNotObject]); got != 1 {
		t.Errorf("rejected{not_object} = %v, want 1", got)
	}
	if err := src.Run(t.Context()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v", err)
	}
}

func TestCoreSourceSlowConsumer(t *testing.T) {
	src, sink, m, cfg := newCoreSource(t, func(c *Config) { c.CorePending = 1 })
	sink.gate = make(chan struct{})
	run(t, src)
	waitFor(t, "subscribed", func() bool { return src.Status().Ready() })

	pub := connect(t, cfg, nil)
	const n = 100
	for i := range n {
		if err := pub.Publish(fmt.Sprintf("feeds.f.k%d", i), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Run is stuck in Apply on the first message; wait until the client has
	// read all of them, so that those that did not fit were dropped.
	waitFor(t, "all delivered to the client", func() bool { return src.nc.Stats().InMsgs >= n })
	close(sink.gate)

	waitFor(t, "drops counted", func() bool {
		dropped := testutil.ToFloat64(m.rejected[ReasonSlowConsumer])
		return dropped > 0 && int(dropped)+len(sink.applied()) == n
	})
	if got := len(sink.applied()); got > 3 {
		t.Errorf("%d messages applied with a buffer of 1", got)
	}
	// The subscription goes on after the drops.
	if err := pub.Publish("feeds.f.after", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "message after drops", func() bool { _, ok := sink.get("f", "after"); return ok })
}

func TestCoreSourceReconnect(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, -1)
	port := serverPort(t, srv)
	cfg := testConfig(srv.ClientURL())
	cfg.JetStream = false
	sink := newFakeSink()
	nc := connect(t, cfg, nil)
	src, err := NewCoreSource(cfg, nc, sink, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "subscribed", func() bool { return src.Status().Ready() })

	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, "disconnected", func() bool { return !src.Status().Connected })
	startServer(t, dir, port)
	waitFor(t, "reconnected", func() bool { return src.Status().Connected })

	pub := connect(t, cfg, nil)
	// The client re-subscribes after the reconnect; publish until it is there.
	waitFor(t, "message after reconnect", func() bool {
		_ = pub.Publish("feeds.f.k", []byte(`{}`))
		_ = pub.Flush()
		time.Sleep(20 * time.Millisecond)
		_, ok := sink.get("f", "k")
		return ok
	})
	checkNoDoubles(t, sink.applied())
}
