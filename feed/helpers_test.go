package feed

import (
	"context"
	"errors"
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
}

// fakeSink is an in-memory segmenter.Sink with the real one's rules: per
// feed, a sequence must be above the highest applied (else ErrDuplicate).
type fakeSink struct {
	gate chan struct{} // if non-nil, Apply waits until it is closed

	mu          sync.Mutex // guards the fields below
	highest     map[string]uint64
	state       map[string]map[string]segmenter.Update
	log         []applied
	tooManyKeys bool            // refuse new keys
	refuseFeeds map[string]bool // refuse these new feeds with ErrTooManyFeeds
	failWith    error           // return this error for every Apply
	loaded      int             // calls of Loaded
	reloads     int             // calls of Reload
}

// Reload records that the source is about to replay its stored state again.
func (s *fakeSink) Reload() {
	s.mu.Lock()
	s.reloads++
	s.mu.Unlock()
}

// Loaded records that the source ended its replay.
func (s *fakeSink) Loaded() {
	s.mu.Lock()
	s.loaded++
	s.mu.Unlock()
}

// loadedCalls returns how often Loaded was called.
func (s *fakeSink) loadedCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

func newFakeSink() *fakeSink {
	return &fakeSink{
		highest:     map[string]uint64{},
		state:       map[string]map[string]segmenter.Update{},
		refuseFeeds: map[string]bool{},
	}
}

func (s *fakeSink) Apply(feed string, u segmenter.Update) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWith != nil {
		return s.failWith
	}
	st, ok := s.state[feed]
	if !ok {
		if s.refuseFeeds[feed] {
			return segmenter.ErrTooManyFeeds
		}
		st = map[string]segmenter.Update{}
		s.state[feed] = st
	}
	if u.Seq <= s.highest[feed] {
		return segmenter.ErrDuplicate
	}
	if _, exists := st[u.Key]; !exists && u.Value != nil && s.tooManyKeys {
		return segmenter.ErrTooManyKeys
	}
	s.highest[feed] = u.Seq
	s.log = append(s.log, applied{feed, u})
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
	u, ok := s.state[feed][key]
	return u, ok
}

// has reports whether an update with seq was applied.
func (s *fakeSink) has(seq uint64) bool {
	_, ok := s.find(seq)
	return ok
}

func (s *fakeSink) find(seq uint64) (applied, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.log {
		if a.u.Seq == seq {
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
	return len(s.state[feed])
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
