package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"marquee/segmenter"
)

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testWriter sends log output to t.Log until the test ends; servers and
// clients may log from their goroutines after that.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	var out io.Writer = w
	if !testing.Verbose() {
		out = io.Discard
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts an embedded server storing in dir, on port (-1: random),
// shut down at the end of the test.
func startServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Port: port}, testLogger(t).With("srv", port))
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

func serverPort(t *testing.T, srv *server.Server) int {
	t.Helper()
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("server address %v is not TCP", srv.Addr())
	}
	return addr.Port
}

// testConfig is the default config pointed at url, reconnecting quickly.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.ReconnectWait = 50 * time.Millisecond
	return cfg
}

func connect(t *testing.T, cfg Config, m *Metrics) *nats.Conn {
	t.Helper()
	nc, err := Connect(cfg, testLogger(t), m)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publisher publishes with JetStream acks, retrying while the server is not
// ready (e.g. just restarted), and returns the stream sequence.
type publisher struct {
	t  *testing.T
	js jetstream.JetStream
}

func newPublisher(t *testing.T, url string) *publisher {
	t.Helper()
	nc := connect(t, testConfig(url), nil)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &publisher{t: t, js: js}
}

func (p *publisher) pub(subject, body string) uint64 {
	p.t.Helper()
	var data []byte
	if body != "" {
		data = []byte(body)
	}
	var seq uint64
	waitFor(p.t, "publish to "+subject, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ack, err := p.js.Publish(ctx, subject, data)
		if err != nil {
			p.t.Logf("publish %s: %v (retrying)", subject, err)
			return false
		}
		seq = ack.Sequence
		return true
	})
	return seq
}

// run runs src until the test ends (or stop is called) and checks that Run
// returned nil.
func run(t *testing.T, src Source) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// applied is one update the fake sink accepted.
type applied struct {
	feed string
	u    segmenter.Update
	at   time.Time // when Apply accepted it
}

// fakeSink is an in-memory segmenter.Sink with the real one's rules: per
// feed, a sequence must be above the highest applied (else ErrDuplicate);
// between Reload and Loaded, Applies fold into fresh state that Loaded swaps
// in, while get and count still answer from the old one (what viewers see).
type fakeSink struct {
	gate chan struct{} // if non-nil, Apply waits until it is closed

	mu          sync.Mutex // guards the fields below
	cur         *sinkState // what viewers see
	next        *sinkState // non-nil between Reload and Loaded
	log         []applied  // every accepted Apply, in order, across reloads
	tooManyKeys bool       // refuse new keys
	refuseFeeds map[string]bool
	failWith    error         // return this error for every Apply
	hold        chan struct{} // if non-nil, Apply signals held and waits until hold is closed
	held        chan struct{} // receives one value per Apply that waits on hold
	loaded      int           // calls of Loaded
	reloads     int           // calls of Reload
	events      []string      // "reload", "loaded" and "apply <seq>", in order
}

type sinkState struct {
	highest map[string]uint64
	feeds   map[string]map[string]segmenter.Update
}

func newSinkState() *sinkState {
	return &sinkState{highest: map[string]uint64{}, feeds: map[string]map[string]segmenter.Update{}}
}

func newFakeSink() *fakeSink {
	return &fakeSink{cur: newSinkState(), refuseFeeds: map[string]bool{}}
}

// Loaded records that the source ended its replay and swaps in the state of
// a reload.
func (s *fakeSink) Loaded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded++
	s.events = append(s.events, "loaded")
	if s.next != nil {
		s.cur, s.next = s.next, nil
	}
}

// Reload starts fresh state; Applies go there until Loaded.
func (s *fakeSink) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads++
	s.events = append(s.events, "reload")
	s.next = newSinkState()
}

// loadedCalls returns how often Loaded was called.
func (s *fakeSink) loadedCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

// reloadCalls returns how often Reload was called.
func (s *fakeSink) reloadCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloads
}

// reloading reports whether a Reload awaits its Loaded.
func (s *fakeSink) reloading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next != nil
}

func (s *fakeSink) eventLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// holdApplies makes every Apply from now on wait until the returned release
// is called; held receives a value each time an Apply starts waiting.
func (s *fakeSink) holdApplies() (held <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hold, h := make(chan struct{}), make(chan struct{}, 1024)
	s.hold, s.held = hold, h
	var once sync.Once
	return h, func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold, s.held = nil, nil
			s.mu.Unlock()
			close(hold)
		})
	}
}

func (s *fakeSink) Apply(feed string, u segmenter.Update) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	if hold := s.hold; hold != nil {
		s.held <- struct{}{}
		s.mu.Unlock()
		<-hold
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if s.failWith != nil {
		return s.failWith
	}
	target := s.cur
	if s.next != nil {
		target = s.next
	}
	st, ok := target.feeds[feed]
	if !ok {
		if s.refuseFeeds[feed] {
			return segmenter.ErrTooManyFeeds
		}
		st = map[string]segmenter.Update{}
		target.feeds[feed] = st
	}
	if u.Seq <= target.highest[feed] {
		return segmenter.ErrDuplicate
	}
	if _, exists := st[u.Key]; !exists && u.Value != nil && s.tooManyKeys {
		return segmenter.ErrTooManyKeys
	}
	target.highest[feed] = u.Seq
	s.log = append(s.log, applied{feed, u, time.Now()})
	s.events = append(s.events, fmt.Sprintf("apply %d", u.Seq))
	if u.Value == nil {
		delete(st, u.Key)
	} else {
		st[u.Key] = u
	}
	return nil
}

func (s *fakeSink) get(feed, key string) (segmenter.Update, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.cur.feeds[feed][key]
	return u, ok
}

// snapshot returns the visible state as feed -> key -> value.
func (s *fakeSink) snapshot() map[string]map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]string{}
	for f, st := range s.cur.feeds {
		if len(st) == 0 {
			continue
		}
		out[f] = map[string]string{}
		for k, u := range st {
			out[f][k] = string(u.Value)
		}
	}
	return out
}

// has reports whether an update with seq was applied.
func (s *fakeSink) has(seq uint64) bool {
	_, ok := s.find(seq)
	return ok
}

// find returns the last update applied with seq.
func (s *fakeSink) find(seq uint64) (applied, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.log) - 1; i >= 0; i-- {
		if a := s.log[i]; a.u.Seq == seq {
			return a, true
		}
	}
	return applied{}, false
}

func (s *fakeSink) applied() []applied {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]applied(nil), s.log...)
}

// count returns the number of keys in feed.
func (s *fakeSink) count(feed string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cur.feeds[feed])
}

func (s *fakeSink) set(f func(s *fakeSink)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// checkNoDoubles fails if any sequence was applied twice or out of order.
func checkNoDoubles(t *testing.T, log []applied) {
	t.Helper()
	var last uint64
	for _, a := range log {
		if a.u.Seq <= last {
			t.Fatalf("sequence %d applied after %d", a.u.Seq, last)
		}
		last = a.u.Seq
	}
}

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return NewMetrics(reg), reg
}

var errBoom = errors.New("boom")

// startJS runs a JetStream source with cfg on a new connection, feeding sink,
// until the test ends; stop ends it earlier.
func startJS(t *testing.T, cfg Config, sink *fakeSink) (src *JetStreamSource, m *Metrics, stop func()) {
	t.Helper()
	m, _ = newTestMetrics(t)
	nc := connect(t, cfg, m)
	src, err := NewJetStreamSource(cfg, nc, sink, testLogger(t), m)
	if err != nil {
		t.Fatalf("NewJetStreamSource: %v", err)
	}
	return src, m, run(t, src)
}

// deleteConsumers deletes every consumer of stream and returns how many.
func deleteConsumers(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	names := st.ConsumerNames(ctx)
	for name := range names.Name() {
		if err := st.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("delete consumer %s: %v", name, err)
		}
		n++
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// streamInfo returns the stream's current info.
func streamInfo(t *testing.T, js jetstream.JetStream, stream string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return st.CachedInfo()
}

// maxGap returns the longest time between two updates applied within
// [from, to], counting from from and until to.
func (s *fakeSink) maxGap(from, to time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gap time.Duration
	prev := from
	for _, a := range s.log {
		if a.at.Before(from) || a.at.After(to) {
			continue
		}
		gap = max(gap, a.at.Sub(prev))
		prev = a.at
	}
	return max(gap, to.Sub(prev))
}

// firstAppliedAt returns when the first update at or after t was applied.
func (s *fakeSink) firstAppliedAt(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.log {
		if !a.at.Before(t) {
			return a.at, true
		}
	}
	return time.Time{}, false
}
