package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testConfig is an embedded-NATS configuration on random loopback ports
// with a store in a temporary directory.
func testConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Origin.DrainDelay = 0
	cfg.Origin.DrainSpread = 0
	cfg.NATS.Embedded.DataDir = t.TempDir()
	cfg.NATS.Demo.Rate = 50
	cfg.NATS.ReconnectWait = 100 * time.Millisecond
	return cfg
}

// start runs an App in the background; wait returns Run's result.
func start(t *testing.T, cfg Config) (a *App, wait func() error) {
	t.Helper()
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	wait = sync.OnceValue(func() error { return <-done })
	t.Cleanup(func() {
		a.Close(context.Background())
		wait()
	})
	return a, wait
}

func waitReady(t *testing.T, a *App) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for a.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", a.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestTwoAppsInOneProcess: one App with its embedded NATS and demo, a
// second App on the first one's NATS; both load the same state, serve it,
// expose their own metrics, and stop cleanly (goleak checks the rest).
func TestTwoAppsInOneProcess(t *testing.T) {
	a1, _ := start(t, testConfig(t))
	cfg2 := testConfig(t)
	cfg2.NATS.URL = a1.NATSURL()
	a2, done2 := start(t, cfg2)
	waitReady(t, a1)
	waitReady(t, a2)
	if !a1.Embedded() || a2.Embedded() {
		t.Fatalf("embedded: %v %v", a1.Embedded(), a2.Embedded())
	}
	for _, a := range []*App{a1, a2} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := get(t, "http://"+a.Addr()+"/v1/feeds/prices/snapshot")
			var s struct{ Entries map[string]json.RawMessage }
			json.Unmarshal(body, &s)
			if code == 200 && len(s.Entries) == 20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: snapshot %d %s", a.Addr(), code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		code, body := get(t, "http://"+a.AdminAddr()+"/metrics")
		for _, m := range []string{"marquee_ready 1", "marquee_segmenter_loaded 1", "marquee_feeds 2", "marquee_segment_rotations_total", "marquee_segment_log_bytes_bucket", "marquee_nats_connected 1",
			"marquee_state_bytes ", `marquee_feed_state_bytes{feed="prices"} `, "marquee_feeds_evicted_total 0", "marquee_feeds_expired_total 0", "marquee_updates_conflated_total 0", "marquee_segment_parts "} {
			if code != 200 || !bytes.Contains(body, []byte(m)) {
				t.Errorf("%s metrics lack %q", a.AdminAddr(), m)
			}
		}
	}
	// Closing the second App does not disturb the first.
	if err := a2.Close(context.Background()); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := done2(); err != nil {
		t.Errorf("run: %v", err)
	}
	if err := a2.Close(context.Background()); err != nil { // idempotent
		t.Errorf("second close: %v", err)
	}
	if code, _ := get(t, "http://"+a1.Addr()+"/readyz"); code != 200 {
		t.Errorf("first app readyz %d after the second closed", code)
	}
}

// TestCloseWithoutRun releases everything New acquired: the port is free
// again and no goroutine is left (goleak).
func TestCloseWithoutRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminAddr = ""
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Addr()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil {
		t.Error("Run after Close returned nil")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	ln.Close()
}

// TestNewFailsCleanly: a failure late in New (the admin port is taken)
// names the variable and releases the embedded NATS server and the public
// listener it had already started.
func TestNewFailsCleanly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.AdminAddr = busy.Addr().String()
	_, err = New(cfg, Deps{})
	if err == nil || !strings.Contains(err.Error(), "MARQUEE_ADMIN_ADDR") {
		t.Fatalf("err = %v", err)
	}
}

// TestConfigErrorsNameVariables: Validate names the variable at fault, and
// short segments are only for tests.
func TestConfigErrorsNameVariables(t *testing.T) {
	cfg := Defaults()
	cfg.Segmenter.SegmentLength = 3 * time.Second
	cfg.Segmenter.Keepalive = time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "MARQUEE_SEGMENT_LENGTH") {
		t.Errorf("3s segments: %v", err)
	}
	if err := cfg.validate(true); err != nil {
		t.Errorf("3s segments with the test knob: %v", err)
	}
	cfg = Defaults()
	cfg.ShutdownTimeout = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "MARQUEE_SHUTDOWN_TIMEOUT") {
		t.Errorf("shutdown timeout: %v", err)
	}
	cfg = Defaults()
	cfg.Segmenter.MaxFeedBytes = 64 << 10 // valid alone, below one message of 64 KiB and its key
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "MARQUEE_MAX_FEED_BYTES") {
		t.Errorf("feed bytes below a message: %v", err)
	}
	cfg.NATS.MaxMessageBytes = 64<<10 - 128
	if err := cfg.Validate(); err != nil {
		t.Errorf("feed bytes for a message exactly: %v", err)
	}
	cfg = Defaults()
	cfg.NATS.Feeds = []string{"bad feed"}
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminAddr = ""
	cfg.NATS.URL = "nats://127.0.0.1:1"
	if _, err := New(cfg, Deps{}); err == nil || !strings.Contains(err.Error(), "MARQUEE_FEEDS") {
		t.Errorf("bad feed name: %v", err)
	}
}

// TestAdminMuxFromRouteTable: the admin mux is built from cdn.AdminRoutes;
// a route without a handler or a handler without a route is refused.
func TestAdminMuxFromRouteTable(t *testing.T) {
	ok := http.NotFoundHandler()
	if _, err := adminMux(map[string]http.Handler{"/metrics": ok, "/healthz": ok, "/readyz": ok}); err != nil {
		t.Errorf("complete table: %v", err)
	}
	if _, err := adminMux(map[string]http.Handler{"/metrics": ok, "/healthz": ok}); err == nil {
		t.Error("missing /readyz handler accepted")
	}
	if _, err := adminMux(map[string]http.Handler{"/metrics": ok, "/healthz": ok, "/readyz": ok, "/debug": ok}); err == nil {
		t.Error("handler without a route accepted")
	}
}

// TestSlowBodyNotHeld: a request that announces a body and never sends it
// is answered and its connection closed within a bound, whatever its
// method (the attack held such connections for as long as the client
// liked, and enough of them starved the process of file handles).
func TestSlowBodyNotHeld(t *testing.T) {
	a, _ := start(t, testConfig(t))
	waitReady(t, a)
	for _, tc := range []struct{ method, addr string }{
		{"GET", a.Addr()}, {"HEAD", a.Addr()}, {"POST", a.Addr()}, {"PUT", a.Addr()}, {"OPTIONS", a.Addr()},
		{"GET", a.AdminAddr()}, {"POST", a.AdminAddr()},
	} {
		method := tc.method
		c, err := net.Dial("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "%s /v1/feeds HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", method)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c) // returns once the server closed the connection
		c.Close()
		if err != nil {
			t.Errorf("%s %s: connection held: %v (read %q)", method, tc.addr, err, b)
			continue
		}
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
			t.Errorf("%s %s: answer %q", method, tc.addr, b)
		}
	}
}

// TestConnectionCap: connections beyond MARQUEE_MAX_CONNECTIONS are closed
// at once and counted; a cap above what the open-file limit allows is a
// configuration error.
func TestConnectionCap(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConnections = 2
	a, _ := start(t, cfg)
	waitReady(t, a)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The listener admits connections in order; wait until both are counted.
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains(metrics(t, a), []byte("marquee_http_connections 2")) {
		if time.Now().After(deadline) {
			t.Fatalf("two connections not counted:\n%s", grep(metrics(t, a), "marquee_http_connections"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("third connection not closed: n=%d err=%v", n, err)
	}
	c.Close()
	if m := metrics(t, a); !bytes.Contains(m, []byte("marquee_http_connections_refused_total 1")) {
		t.Errorf("refusal not counted:\n%s", grep(m, "marquee_http_connections"))
	}
	for _, c := range held {
		c.Close()
	}
	cfg.MaxConnections = 1 << 30
	if _, err := New(cfg, Deps{}); err == nil || !strings.Contains(err.Error(), "MARQUEE_MAX_CONNECTIONS") {
		t.Errorf("huge cap: %v", err)
	}
}

func metrics(t *testing.T, a *App) []byte {
	t.Helper()
	_, b := get(t, "http://"+a.AdminAddr()+"/metrics")
	return b
}

func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestStoreRecovers: when the embedded server's JetStream store stops
// (as it does after a critical write error, e.g. out of file handles),
// /readyz says so at once and the app restarts the server on the same port
// and store: ingestion works again and the stored state is still there.
func TestStoreRecovers(t *testing.T) {
	a, _ := start(t, testConfig(t))
	waitReady(t, a)
	waitPrices := func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := get(t, "http://"+a.Addr()+"/v1/feeds/prices/snapshot")
			var s struct{ Entries map[string]json.RawMessage }
			json.Unmarshal(body, &s)
			if code == 200 && len(s.Entries) == 20 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("snapshot %d %s", code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitPrices()
	if err := a.EmbeddedServer().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, "http://"+a.Addr()+"/readyz")
		if code == 503 && strings.Contains(string(body), "store") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz %d %s while the store is down", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !bytes.Contains(metrics(t, a), []byte("marquee_store_healthy 0")) {
		t.Error("marquee_store_healthy not 0 while the store is down")
	}
	seq0 := a.Hub().Stats().Updates
	waitReady(t, a)
	// Ingestion is alive: the demo's updates are applied again.
	deadline = time.Now().Add(20 * time.Second)
	for a.Hub().Stats().Updates <= seq0 {
		if time.Now().After(deadline) {
			t.Fatal("no update applied after the store recovered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitPrices()
	m := metrics(t, a)
	if !bytes.Contains(m, []byte("marquee_store_restarts_total 1")) || !bytes.Contains(m, []byte("marquee_store_healthy 1")) {
		t.Errorf("store metrics:\n%s", grep(m, "marquee_store"))
	}
}

// TestBannerNamesAFeed: the start-up banner's example URLs name a feed
// that exists: the demo's prices, else the first allow-listed feed, else
// a placeholder it explains.
func TestBannerNamesAFeed(t *testing.T) {
	a1, _ := start(t, testConfig(t))
	waitReady(t, a1)
	banner := func(edit func(*Config)) string {
		t.Helper()
		cfg := testConfig(t)
		if edit != nil {
			edit(&cfg)
		}
		var out syncBuffer
		a, err := New(cfg, Deps{Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "direct:") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		return out.String()
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"demo", nil, "/v1/feeds/prices/events"},
		{"allow-list", func(c *Config) { c.NATS.URL = a1.NATSURL(); c.NATS.Feeds = []string{"scores", "prices"} }, "/v1/feeds/scores/events"},
		{"any feed", func(c *Config) { c.NATS.URL = a1.NATSURL() }, "/v1/feeds/FEED/events"},
	} {
		if got := banner(tc.edit); !strings.Contains(got, tc.want) {
			t.Errorf("%s: banner lacks %s:\n%s", tc.name, tc.want, got)
		} else if tc.name == "any feed" && !strings.Contains(got, "(FEED: a feed ") {
			t.Errorf("%s: the placeholder is not explained:\n%s", tc.name, got)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
