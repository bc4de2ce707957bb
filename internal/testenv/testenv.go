// Package testenv runs marquee for real inside a test: an embedded NATS
// server with JetStream on a temporary store, the feed consumer, the
// segmenter with short segments, and the origin on a loopback HTTP server.
// The origin is the program's own App (internal/app), the one wiring that
// cmd/marquee runs too; this package only chooses test-sized settings, a
// NATS server that tests can stop and restart, and helpers.
//
// Concurrency: an Env and its Origin are used from the test goroutine;
// Stop and Restart must not race with each other.
package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"marquee/feed"
	"marquee/internal/app"
	"marquee/internal/porthold"
	"marquee/origin"
	"marquee/segmenter"
	"marquee/wire"
)

// Options configures an origin under test. Zero values take test defaults.
type Options struct {
	SegmentLength time.Duration // default 3s
	PartLength    time.Duration // default 1s
	Keepalive     time.Duration // default 1s
	Core          bool          // core NATS instead of JetStream
	Feeds         []string      // MARQUEE_FEEDS allow-list; default none
	Addr          string        // listen address; default 127.0.0.1:0
	Origin        *origin.Config
	Log           bool // log to the test's output at debug level
	// IngestNow is the ingest listener's clock (app.Testing.IngestNow);
	// nil: time.Now. The listener itself is on when Config sets
	// Ingest.ListenAddr.
	IngestNow func() time.Time
	// Config, when set, edits the app configuration after the options
	// above were applied (any setting an operator has).
	Config func(*app.Config)
}

// NATS is an embedded NATS server with JetStream on a directory that
// survives restarts of the origin (and of the server itself).
type NATS struct {
	t   testing.TB
	Dir string
	Srv *server.Server
	URL string
	// Pub is a connection for publishing test messages.
	Pub *nats.Conn
}

// StartNATS starts an embedded NATS server with JetStream in a temporary
// directory and connects a publisher. It is stopped at test cleanup.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, Dir: t.TempDir()}
	n.start(-1)
	t.Cleanup(n.Stop)
	return n
}

// ConnectNATS returns a NATS for servers the test runs itself (a cluster
// from internal/natstest, say): url may list several servers, comma
// separated. Stop closes only the publisher.
func ConnectNATS(t testing.TB, url string) *NATS {
	t.Helper()
	n := &NATS{t: t, URL: url}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect publisher: %v", err)
	}
	n.Pub = nc
	t.Cleanup(n.Stop)
	return n
}

func (n *NATS) start(port int) {
	n.t.Helper()
	srv, err := feed.StartEmbedded(feed.EmbeddedConfig{DataDir: n.Dir, Port: port}, nil)
	if err != nil {
		n.t.Fatalf("start nats: %v", err)
	}
	n.Srv, n.URL = srv, srv.ClientURL()
	if n.Pub == nil {
		nc, err := nats.Connect(n.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			n.t.Fatalf("connect publisher: %v", err)
		}
		n.Pub = nc
	}
}

// Stop shuts the server down (idempotent).
func (n *NATS) Stop() {
	if n.Pub != nil {
		n.Pub.Close()
		n.Pub = nil
	}
	if n.Srv != nil {
		n.Srv.Shutdown()
		n.Srv.WaitForShutdown()
		n.Srv = nil
	}
}

// Publish publishes body on subject and flushes.
func (n *NATS) Publish(subject string, body string) {
	n.t.Helper()
	if err := n.Pub.Publish(subject, []byte(body)); err != nil {
		n.t.Fatalf("publish %s: %v", subject, err)
	}
	if err := n.Pub.Flush(); err != nil {
		n.t.Fatalf("flush: %v", err)
	}
}

// Origin is one running marquee origin: the program's own App
// (internal/app), configured for tests and run in the background.
type Origin struct {
	t        testing.TB
	opts     Options
	nats     *NATS
	URL      string // http://127.0.0.1:port
	Addr     string
	App      *app.App
	Hub      *segmenter.Hub
	Server   *origin.Server
	Registry *prometheus.Registry
	Source   feed.Source

	// IngestURL is the ingest listener's http://host:port ("" when off).
	IngestURL string

	done chan error // Run's result
	once sync.Once
	hold *porthold.Hold // the port, from Stop until the next start
}

// StartOrigin starts an origin on n with opts and waits until it is ready.
// It is stopped at cleanup.
func StartOrigin(t testing.TB, n *NATS, opts Options) *Origin {
	t.Helper()
	o := &Origin{t: t, opts: opts.withDefaults(), nats: n}
	o.start()
	t.Cleanup(func() { o.hold.Release() }) // after Stop (cleanups run last first)
	t.Cleanup(o.Stop)
	return o
}

// withDefaults fills in the test-sized settings opts leaves zero: 3 s
// segments of 1 s parts, 1 s keepalives, a free loopback port.
func (opts Options) withDefaults() Options {
	if opts.SegmentLength == 0 {
		opts.SegmentLength = 3 * time.Second
	}
	if opts.PartLength == 0 {
		opts.PartLength = time.Second
	}
	if opts.Keepalive == 0 {
		opts.Keepalive = time.Second
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	return opts
}

// Config returns the app configuration an origin with opts runs on n:
// the production defaults with test-sized segments and drain (the zero
// fields of opts as StartOrigin fills them in).
func Config(n *NATS, opts Options) app.Config {
	opts = opts.withDefaults()
	cfg := app.Defaults()
	cfg.Addr = opts.Addr
	cfg.AdminAddr = ""
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.Segmenter.SegmentLength = opts.SegmentLength
	cfg.Segmenter.PartLength = opts.PartLength
	cfg.Segmenter.Keepalive = opts.Keepalive
	cfg.NATS.URL = n.URL
	cfg.NATS.JetStream = !opts.Core
	cfg.NATS.Feeds = opts.Feeds
	cfg.NATS.ReconnectWait = 100 * time.Millisecond
	cfg.Origin.DrainDelay = 0
	cfg.Origin.DrainSpread = 100 * time.Millisecond
	if opts.Origin != nil {
		cfg.Origin = *opts.Origin
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	return cfg
}

func (o *Origin) start() {
	t := o.t
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if o.opts.Log {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := Config(o.nats, o.opts)
	var (
		a   *app.App
		err error
	)
	for i := 0; ; i++ { // a restart may find the port in TIME_WAIT briefly
		a, err = app.New(cfg, app.Deps{Log: log, Testing: app.Testing{ShortSegments: true, IngestNow: o.opts.IngestNow}})
		if err == nil || i == 50 || !strings.Contains(err.Error(), "listen") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	o.hold.Release() // the app listens on the port now
	o.hold = nil
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	o.opts.Addr = a.Addr() // a restart comes back on the same port
	o.Addr, o.URL = o.opts.Addr, "http://"+o.opts.Addr
	o.IngestURL = ""
	if ia := a.IngestAddr(); ia != "" {
		o.IngestURL = "http://" + ia
	}
	o.App, o.Hub, o.Server, o.Registry, o.Source = a, a.Hub(), a.Server(), a.Registry(), a.Source()
	o.once = sync.Once{}
	o.done = make(chan error, 1)
	go func() { o.done <- a.Run(context.Background()) }()
	o.WaitReady()
}

// TokenKeys are the token keys Protect sets: "k1" mints, "k0" still
// validates (a rotation in progress).
const TokenKeys = "k1:test-secret-one-0123456789,k0:test-secret-zero-012345678"

// Protect returns an Options.Config edit that protects feeds ("*": all)
// with TokenKeys and windows of window segments (0: the default, 10).
func Protect(window int, feeds ...string) func(*app.Config) {
	return func(c *app.Config) {
		c.Origin.Tokens.Keys = TokenKeys
		c.Origin.Tokens.ProtectedFeeds = feeds
		if window > 0 {
			c.Origin.Tokens.Window = window
		}
	}
}

// Token mints the token of feed for the current window on the origin.
func (o *Origin) Token(feed string) string {
	o.t.Helper()
	tok, err := o.Server.Tokens().Mint(feed, o.Hub.Now())
	if err != nil {
		o.t.Fatalf("mint a token for %s: %v", feed, err)
	}
	return tok.Value
}

// WaitReady waits until /readyz answers 200.
func (o *Origin) WaitReady() {
	o.t.Helper()
	Eventually(o.t, 20*time.Second, func() error {
		resp, err := http.Get(o.URL + "/readyz")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})
}

// Stop drains and stops the origin and waits for Run to return
// (idempotent until Restart).
func (o *Origin) Stop() {
	o.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := o.App.Close(ctx); err != nil {
			o.t.Logf("origin stop: %v", err)
		}
		if err := <-o.done; err != nil {
			o.t.Errorf("origin run: %v", err)
		}
		// Until a Restart, no other socket may take the port (an
		// outgoing connection's automatic port, say): the origin comes
		// back on it.
		if host, p, err := net.SplitHostPort(o.Addr); err == nil && host == "127.0.0.1" {
			if port, err := strconv.Atoi(p); err == nil {
				o.hold, _, _ = porthold.Port(port)
			}
		}
	})
}

// Restart stops the origin and starts a new one on the same address and the
// same JetStream store.
func (o *Origin) Restart() {
	o.t.Helper()
	o.Stop()
	o.start()
}

// Metric returns the value of the counter or gauge name with exactly the
// given labels (0 when absent).
func (o *Origin) Metric(name string, labels map[string]string) float64 {
	o.t.Helper()
	mfs, err := o.Registry.Gather()
	if err != nil {
		o.t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				}
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, lp := range m.GetLabel() {
		if labels[lp.GetName()] != lp.GetValue() {
			return false
		}
	}
	return true
}

// Descriptor fetches the feed descriptor.
func (o *Origin) Descriptor(feedName string) wire.Descriptor {
	o.t.Helper()
	var d wire.Descriptor
	GetJSON(o.t, o.URL+"/v1/feeds/"+feedName, &d)
	return d
}

// GetJSON fetches url and decodes its JSON body into v; non-200 fails the test.
func GetJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// Eventually polls f every 10 ms until it returns nil, failing the test
// with f's last error after timeout. Timeouts are generous limits, never
// assertions about speed.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NeedProgram returns the path of a program a test needs. When it is
// missing the test is skipped on a developer's machine and fails under
// CI=true.
func NeedProgram(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not installed", strings.Join(names, " or "))
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run must install it)", msg)
	}
	t.Skip(msg)
	return ""
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
