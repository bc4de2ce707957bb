package feed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/segmenter"
)

// jsFixture is an embedded server, a JetStream source on it feeding a fake
// sink, and a publisher.
type jsFixture struct {
	t    *testing.T
	cfg  Config
	sink *fakeSink
	m    *Metrics
	nc   *nats.Conn
	src  *JetStreamSource
	pub  *publisher
	stop func()
}

func newJSFixture(t *testing.T, mod func(*Config)) *jsFixture {
	t.Helper()
	srv := startServer(t, t.TempDir(), -1)
	f := &jsFixture{t: t, cfg: testConfig(srv.ClientURL()), sink: newFakeSink()}
	if mod != nil {
		mod(&f.cfg)
	}
	f.m, _ = newTestMetrics(t)
	f.nc = connect(t, f.cfg, f.m)
	src, err := NewSource(f.cfg, f.nc, f.sink, testLogger(t), f.m)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	var ok bool
	if f.src, ok = src.(*JetStreamSource); !ok {
		t.Fatalf("NewSource returned %T, want *JetStreamSource", src)
	}
	f.stop = run(t, f.src)
	waitFor(t, "loaded", func() bool { return f.src.Status().Loaded })
	f.pub = newPublisher(t, srv.ClientURL())
	return f
}

func (f *jsFixture) waitApplied(seq uint64) applied {
	f.t.Helper()
	waitFor(f.t, fmt.Sprintf("seq %d applied", seq), func() bool { return f.sink.has(seq) })
	a, _ := f.sink.find(seq)
	return a
}

func (f *jsFixture) rejected(r Reason) float64 { return testutil.ToFloat64(f.m.rejected[r]) }

func TestJetStreamSourceApplies(t *testing.T) {
	f := newJSFixture(t, nil)
	if st := f.src.Status(); !st.Ready() || st.Err != "" {
		t.Fatalf("status = %+v, want ready without error", st)
	}
	if got := testutil.ToFloat64(f.m.loaded); got != 1 {
		t.Fatalf("marquee_feed_loaded = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.m.connected); got != 1 {
		t.Fatalf("marquee_nats_connected = %v, want 1", got)
	}

	s1 := f.pub.pub("feeds.prices.AAPL", "{ \"price\": 189.23,\n \"symbol\": \"AAPL\" }")
	a := f.waitApplied(s1)
	if a.feed != "prices" || a.u.Key != "AAPL" || string(a.u.Value) != `{"price":189.23,"symbol":"AAPL"}` {
		t.Fatalf("applied %s %+v", a.feed, a.u)
	}
	if a.u.Time.IsZero() || time.Since(a.u.Time) > time.Hour {
		t.Fatalf("update time %v is not the publish time", a.u.Time)
	}

	s2 := f.pub.pub("feeds.scores.nba.lal-bos", `{"home_score":54}`)
	if a := f.waitApplied(s2); a.feed != "scores" || a.u.Key != "nba.lal-bos" {
		t.Fatalf("applied %s %+v", a.feed, a.u)
	}

	s3 := f.pub.pub("feeds.prices.AAPL", "")
	if a := f.waitApplied(s3); a.u.Key != "AAPL" || a.u.Value != nil {
		t.Fatalf("delete applied as %+v", a.u)
	}
	if _, ok := f.sink.get("prices", "AAPL"); ok {
		t.Fatal("key not deleted")
	}
	if s1 >= s2 || s2 >= s3 {
		t.Fatalf("stream sequences not increasing: %d %d %d", s1, s2, s3)
	}
	checkNoDoubles(t, f.sink.applied())
	waitFor(t, "Sink.Loaded called once (the end of the replay)", func() bool { return f.sink.loadedCalls() == 1 })
	if got := testutil.ToFloat64(f.m.accepted.WithLabelValues("prices")); got != 2 {
		t.Errorf("accepted{prices} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.m.lastSeq); got != float64(s3) {
		t.Errorf("last sequence = %v, want %d", got, s3)
	}

	// The stream was created as configured.
	js, _ := jetstream.New(f.nc)
	stream, err := js.Stream(context.Background(), "FEEDS")
	if err != nil {
		t.Fatal(err)
	}
	sc := stream.CachedInfo().Config
	if sc.MaxMsgsPerSubject != 16 || sc.Storage != jetstream.FileStorage || sc.Discard != jetstream.DiscardOld ||
		len(sc.Subjects) != 1 || sc.Subjects[0] != "feeds.>" {
		t.Errorf("stream config = %+v", sc)
	}

	if err := f.src.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}

	// Run removes its consumer when it stops.
	f.stop()
	waitFor(t, "consumer deleted", func() bool {
		names := stream.ConsumerNames(context.Background())
		n := 0
		for range names.Name() {
			n++
		}
		return names.Err() == nil && n == 0
	})
}

func TestJetStreamSourceRejects(t *testing.T) {
	f := newJSFixture(t, func(c *Config) { c.Feeds = []string{"prices", "scores", "dups", "full", "crowded", "broken"} })
	// Prepare the sink: "dups" has seen a high sequence; "crowded" is refused.
	if err := f.sink.Apply("dups", segmenter.Update{Key: "x", Value: []byte(`{}`), Seq: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	f.sink.set(func(s *fakeSink) { s.refuseFeeds["crowded"] = true })

	tests := []struct {
		reason  Reason
		subject string
		body    string
		before  func()
		after   func()
	}{
		{reason: ReasonTooLarge, subject: "feeds.prices.big", body: `{"a":"` + strings.Repeat("x", 64<<10) + `"}`},
		{reason: ReasonBadSubject, subject: "feeds.prices", body: `{}`},
		{reason: ReasonBadFeed, subject: "feeds.b@d.k", body: `{}`},
		{reason: ReasonBadKey, subject: "feeds.prices.a+b", body: `{}`},
		{reason: ReasonBadJSON, subject: "feeds.prices.k", body: `{"a":`},
		{reason: ReasonNotObject, subject: "feeds.prices.k", body: `[1,2]`},
		{reason: ReasonUnknownFeed, subject: "feeds.weather.k", body: `{}`},
		{reason: ReasonDuplicate, subject: "feeds.dups.y", body: `{}`},
		{reason: ReasonTooManyFeeds, subject: "feeds.crowded.k", body: `{}`},
		{
			reason: ReasonTooManyKeys, subject: "feeds.full.new", body: `{}`,
			before: func() { f.sink.set(func(s *fakeSink) { s.tooManyKeys = true }) },
			after:  func() { f.sink.set(func(s *fakeSink) { s.tooManyKeys = false }) },
		},
		{
			reason: ReasonTooManyBytes, subject: "feeds.full.big", body: `{}`,
			before: func() {
				f.sink.set(func(s *fakeSink) {
					s.failWith = &segmenter.BytesError{Feed: "full", Var: "MARQUEE_MAX_FEED_BYTES", Limit: 1, Would: 9}
				})
			},
			after: func() { f.sink.set(func(s *fakeSink) { s.failWith = nil }) },
		},
		{
			reason: ReasonNoFeed, subject: "feeds.full.gone", body: ``,
			before: func() { f.sink.set(func(s *fakeSink) { s.failWith = segmenter.ErrUnknownFeed }) },
			after:  func() { f.sink.set(func(s *fakeSink) { s.failWith = nil }) },
		},
		{
			reason: ReasonSinkError, subject: "feeds.broken.k", body: `{}`,
			before: func() { f.sink.set(func(s *fakeSink) { s.failWith = errBoom }) },
			after:  func() { f.sink.set(func(s *fakeSink) { s.failWith = nil }) },
		},
	}
	for i, tt := range tests {
		t.Run(tt.reason.String(), func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			f.pub.pub(tt.subject, tt.body)
			waitFor(t, "rejection counted", func() bool { return f.rejected(tt.reason) == 1 })
			if tt.after != nil {
				tt.after()
			}
			// The next good message is still served.
			seq := f.pub.pub(fmt.Sprintf("feeds.scores.good%d", i), `{"ok":true}`)
			if a := f.waitApplied(seq); a.u.Key != fmt.Sprintf("good%d", i) {
				t.Fatalf("good message applied as %+v", a.u)
			}
		})
	}
	for _, r := range Reasons() {
		want := 1.0
		if r == ReasonBadMetadata || r == ReasonSlowConsumer {
			want = 0
		}
		if got := f.rejected(r); got != want {
			t.Errorf("rejected{%s} = %v, want %v", r, got, want)
		}
	}
	if got := testutil.ToFloat64(f.m.accepted.WithLabelValues("scores")); got != float64(len(tests)) {
		t.Errorf("accepted{scores} = %v, want %d", got, len(tests))
	}
	if st := f.src.Status(); !st.Ready() {
		t.Errorf("status after bad messages = %+v", st)
	}
}

// badMetaMsg is a jetstream.Msg whose reply subject is not a JetStream ack
// subject, so that it has no metadata (a message no server sends).
type badMetaMsg struct{ jetstream.Msg }

func (badMetaMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, jetstream.ErrNotJSMessage
}
func (badMetaMsg) Subject() string { return "feeds.prices.AAPL" }
func (badMetaMsg) Data() []byte    { return []byte(`{}`) }

func TestJetStreamSourceBadMetadata(t *testing.T) {
	f := newJSFixture(t, nil)
	f.stop() // handle is called directly below; Run must not run concurrently
	f.src.handle(badMetaMsg{})
	if got := f.rejected(ReasonBadMetadata); got != 1 {
		t.Fatalf("rejected{bad_metadata} = %v, want 1", got)
	}
	if n := len(f.sink.applied()); n != 0 {
		t.Fatalf("sink got %d updates", n)
	}
}

func TestJetStreamSourceRestartRebuildsState(t *testing.T) {
	f := newJSFixture(t, nil)
	f.pub.pub("feeds.prices.AAPL", `{"p":1}`)
	f.pub.pub("feeds.prices.MSFT", `{"p":1}`)
	a2 := f.pub.pub("feeds.prices.AAPL", `{"p":2}`)
	f.waitApplied(a2)
	f.stop()

	// While no source runs: more values, a delete, a bad message.
	m2 := f.pub.pub("feeds.prices.MSFT", `{"p":2}`)
	g1 := f.pub.pub("feeds.scores.nba.lal-bos", `{"s":1}`)
	f.pub.pub("feeds.scores.nhl.tor-mtl", `{"s":1}`)
	d2 := f.pub.pub("feeds.scores.nhl.tor-mtl", "")
	f.pub.pub("feeds.prices.BAD", `not json`)
	for i := range 100 {
		f.pub.pub(fmt.Sprintf("feeds.bulk.k%03d", i), fmt.Sprintf(`{"i":%d}`, i))
	}

	// A new process: new sink, new connection, new metrics.
	sink := newFakeSink()
	m, _ := newTestMetrics(t)
	nc := connect(t, f.cfg, m)
	src, err := NewJetStreamSource(f.cfg, nc, sink, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "loaded", func() bool { return src.Status().Loaded })
	// Loaded is set after the last stored message was applied.
	if got := sink.count("bulk"); got != 100 {
		t.Fatalf("loaded with %d of 100 bulk keys", got)
	}
	for _, c := range []struct {
		feed, key, value string
		seq              uint64
	}{
		{"prices", "AAPL", `{"p":2}`, a2},
		{"prices", "MSFT", `{"p":2}`, m2},
		{"scores", "nba.lal-bos", `{"s":1}`, g1},
	} {
		u, ok := sink.get(c.feed, c.key)
		if !ok || string(u.Value) != c.value || u.Seq != c.seq {
			t.Errorf("%s/%s = %+v (found %v), want %s at seq %d", c.feed, c.key, u, ok, c.value, c.seq)
		}
	}
	if _, ok := sink.get("scores", "nhl.tor-mtl"); ok {
		t.Error("deleted key present after rebuild")
	}
	// Only the last message per subject was replayed.
	log := sink.applied()
	checkNoDoubles(t, log)
	if got, want := len(log), 3+1+100; got != want { // AAPL, MSFT, lal-bos, the delete, bulk
		t.Errorf("replayed %d updates, want %d", got, want)
	}
	if a, ok := sink.find(d2); !ok || a.u.Value != nil {
		t.Errorf("delete not replayed as last value: %+v", a)
	}
	if got := testutil.ToFloat64(m.rejected[ReasonBadJSON]); got != 1 {
		t.Errorf("rejected{bad_json} on replay = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.pending); got != 0 {
		t.Errorf("pending after catch-up = %v", got)
	}

	// Live messages follow.
	live := f.pub.pub("feeds.prices.AAPL", `{"p":3}`)
	waitFor(t, "live message", func() bool { return sink.has(live) })

}

func TestJetStreamSourceDuplicatesAfterReplay(t *testing.T) {
	f := newJSFixture(t, nil)
	s1 := f.pub.pub("feeds.prices.AAPL", `{"p":1}`)
	s2 := f.pub.pub("feeds.prices.MSFT", `{"p":1}`)
	f.waitApplied(s2)
	f.stop()

	// Same sink, new source: both last values were applied already.
	m, _ := newTestMetrics(t)
	src, err := NewJetStreamSource(f.cfg, f.nc, f.sink, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "loaded", func() bool { return src.Status().Loaded })
	waitFor(t, "duplicates counted", func() bool { return testutil.ToFloat64(m.rejected[ReasonDuplicate]) == 2 })
	s3 := f.pub.pub("feeds.prices.AAPL", `{"p":2}`)
	f.waitApplied(s3)
	if got := len(f.sink.applied()); got != 3 {
		t.Fatalf("sink has %d updates, want 3 (seqs %d %d %d)", got, s1, s2, s3)
	}
}

func TestJetStreamSourceServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, -1)
	port := serverPort(t, srv)
	url := srv.ClientURL()
	cfg := testConfig(url)
	sink := newFakeSink()
	m, _ := newTestMetrics(t)
	nc := connect(t, cfg, m)
	src, err := NewJetStreamSource(cfg, nc, sink, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "loaded", func() bool { return src.Status().Loaded })
	pub := newPublisher(t, url)
	s1 := pub.pub("feeds.prices.AAPL", `{"p":1}`)
	waitFor(t, "first message", func() bool { return sink.has(s1) })

	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, "disconnected", func() bool { return !src.Status().Connected })
	// The connection's handlers, which keep the metrics, run on the
	// client's callback goroutine, a little after its status changed.
	waitFor(t, "marquee_nats_connected 0 while down", func() bool { return testutil.ToFloat64(m.connected) == 0 })

	startServer(t, dir, port) // same store, same port
	waitFor(t, "reconnected", func() bool { return src.Status().Connected })
	s2 := pub.pub("feeds.prices.AAPL", `{"p":2}`)
	if s2 <= s1 {
		t.Fatalf("stream sequence went from %d to %d: store not reused", s1, s2)
	}
	waitFor(t, "message after restart", func() bool { return sink.has(s2) })
	s3 := pub.pub("feeds.prices.MSFT", `{"p":1}`)
	waitFor(t, "second message after restart", func() bool { return sink.has(s3) })

	checkNoDoubles(t, sink.applied())
	if got := len(sink.applied()); got != 3 {
		t.Errorf("sink has %d updates, want 3", got)
	}
	waitFor(t, "Sink.Loaded called once: a reconnect does not end a replay again", func() bool { return sink.loadedCalls() == 1 })
	waitFor(t, "marquee_nats_reconnects_total >= 1", func() bool { return testutil.ToFloat64(m.reconnects) >= 1 })
	waitFor(t, "marquee_nats_connected 1", func() bool { return testutil.ToFloat64(m.connected) == 1 })
	if st := src.Status(); !st.Ready() {
		t.Errorf("status after restart = %+v", st)
	}
}

func TestJetStreamSourceConsumerDeleted(t *testing.T) {
	f := newJSFixture(t, nil)
	js, err := jetstream.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for round := range 3 {
		seq := f.pub.pub("feeds.prices.AAPL", fmt.Sprintf(`{"round":%d}`, round))
		seqs = append(seqs, seq)
		f.waitApplied(seq)
		if n := deleteConsumers(t, js, f.cfg.Stream); n == 0 {
			t.Fatalf("round %d: no consumer to delete", round)
		}
	}
	last := f.pub.pub("feeds.prices.MSFT", `{"after":"deletes"}`)
	f.waitApplied(last)
	log := f.sink.applied()
	checkNoDoubles(t, log)
	if got, want := len(log), len(seqs)+1; got != want {
		t.Errorf("sink has %d updates, want %d", got, want)
	}
	if got := testutil.ToFloat64(f.m.restarts); got < 3 {
		t.Errorf("consumer restarts = %v, want at least 3", got)
	}
	if got := f.sink.reloadCalls(); got != 0 {
		t.Errorf("Reload called %d times after deleted consumers (no gap)", got)
	}
}

func TestJetStreamSourceMissingStream(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	cfg.CreateStream = false
	cfg.Stream = "MANAGED"
	sink := newFakeSink()
	nc := connect(t, cfg, nil)
	src, err := NewJetStreamSource(cfg, nc, sink, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "error reported", func() bool { return src.Status().Err != "" })
	if st := src.Status(); st.Loaded || st.Ready() || !st.StreamMissing || !strings.HasPrefix(st.Reason(), "jetstream stream missing") {
		t.Fatalf("status without stream = %+v (%s)", st, st.Reason())
	}
	if got := sink.loadedCalls(); got != 0 {
		t.Fatalf("Sink.Loaded called %d times without a stream", got)
	}

	// Somebody creates the stream: the source picks it up.
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "MANAGED", Subjects: []string{"feeds.>"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "loaded", func() bool { return src.Status().Ready() })
	if st := src.Status(); st.Err != "" || st.StreamMissing {
		t.Errorf("error not cleared: %+v", st)
	}
	pub := newPublisher(t, srv.ClientURL())
	seq := pub.pub("feeds.prices.AAPL", `{}`)
	waitFor(t, "message", func() bool { return sink.has(seq) })
	waitFor(t, "Sink.Loaded called once", func() bool { return sink.loadedCalls() == 1 })
}

func TestNewSourceChecks(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	nc := connect(t, cfg, nil)
	sink := newFakeSink()

	src, err := NewSource(cfg, nc, sink, nil, nil)
	if _, ok := src.(*JetStreamSource); err != nil || !ok {
		t.Errorf("JetStream config: %T, %v", src, err)
	}
	cfg.JetStream = false
	src, err = NewSource(cfg, nc, sink, nil, nil)
	if _, ok := src.(*CoreSource); err != nil || !ok {
		t.Errorf("core config: %T, %v", src, err)
	}
	if _, err := NewSource(cfg, nil, sink, nil, nil); err == nil {
		t.Error("nil connection accepted")
	}
	if _, err := NewSource(cfg, nc, nil, nil, nil); err == nil {
		t.Error("nil sink accepted")
	}
	cfg.MaxKeyLen = 0
	if _, err := NewSource(cfg, nc, sink, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid config: %v", err)
	}
	if _, err := Connect(Config{}, nil, nil); !errors.Is(err, ErrNoURL) {
		t.Errorf("Connect without URL: %v", err)
	}
}
