package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/sse"
	"marquee/wire"
)

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

// TestRunDemo runs the binary's run function as a newcomer would use it:
// embedded NATS, demo publisher, both feeds listed, a segment that starts
// with a full snapshot and carries live updates, metrics on the admin port,
// and a clean shutdown when the context ends.
func TestRunDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	var out syncBuffer
	env := []string{
		"MARQUEE_ADDR=127.0.0.1:0",
		"MARQUEE_ADMIN_ADDR=127.0.0.1:0",
		"MARQUEE_DATA_DIR=" + t.TempDir(),
		"MARQUEE_DEMO_RATE=20",
		"MARQUEE_DRAIN_DELAY=0s",
		"MARQUEE_LOG_LEVEL=warn",
		"UNRELATED=1",
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env, &out, func(pub, admin string) { addrs <- [2]string{pub, admin} })
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start")
	}
	base := "http://" + a[0]
	// The addresses are known before Run prints the banner.
	for end := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "/v1/feeds") && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "marquee listening on "+base) || !strings.Contains(out.String(), "/v1/feeds") {
		t.Errorf("startup output:\n%s", out.String())
	}

	var feeds wire.FeedList
	deadline := time.Now().Add(20 * time.Second)
	for len(feeds.Feeds) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		getJSON(t, base+"/v1/feeds", &feeds)
	}
	if want := []wire.FeedRef{{Feed: "prices", URL: "/v1/feeds/prices"}, {Feed: "scores", URL: "/v1/feeds/scores"}}; !slices.Equal(feeds.Feeds, want) {
		t.Fatalf("feeds = %+v, want %+v", feeds.Feeds, want)
	}
	var desc wire.Descriptor
	getJSON(t, base+"/v1/feeds/prices", &desc)
	resp, err := http.Get(base + desc.URL)
	if err != nil {
		t.Fatal(err)
	}
	dec := sse.NewDecoder(resp.Body)
	ev, err := dec.Next()
	if err != nil || ev.Type != "snapshot" {
		t.Fatalf("first event %q: %v", ev.Type, err)
	}
	var snap wire.Snapshot
	for len(snap.Entries) < 20 && time.Now().Before(deadline) {
		getJSON(t, base+"/v1/feeds/prices/snapshot", &snap)
	}
	if len(snap.Entries) < 20 {
		t.Errorf("snapshot has %d prices", len(snap.Entries))
	}
	if ev, err = dec.Next(); err != nil || ev.Type != "update" {
		t.Errorf("second event %q: %v", ev.Type, err)
	}
	resp.Body.Close()

	m, err := http.Get("http://" + a[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, name := range []string{"marquee_http_open_streams", "marquee_segment_responses_total", "marquee_feed_messages_rejected_total", "marquee_nats_connected 1", "marquee_slow_readers_closed_total", "marquee_segment_rotations_total", "marquee_http_bytes_written_total"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("metrics lack %s", name)
		}
	}
	// The README's metrics section names every marquee_ metric the
	// binary exposes.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, ok := strings.CutPrefix(line, "# TYPE ")
		if !ok || !strings.HasPrefix(name, "marquee_") {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		if !bytes.Contains(readme, []byte("`"+name+"`")) && !bytes.Contains(readme, []byte("`"+name+"{")) {
			t.Errorf("README does not name the metric %s", name)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestConfigErrors: an invalid setting stops start-up with a message that
// names the variable.
func TestConfigErrors(t *testing.T) {
	tests := []struct{ env, want string }{
		{"MARQUEE_SEGMENT_LENGTH=5s", "MARQUEE_SEGMENT_LENGTH"},
		{"MARQUEE_SEGMENT_LENGTH=301s", "MARQUEE_SEGMENT_LENGTH"},
		{"MARQUEE_SEGMENT_LENGTH=banana", "MARQUEE_SEGMENT_LENGTH"},
		{"MARQUEE_PART_LENGTH=7s", "MARQUEE_PART_LENGTH"},
		{"MARQUEE_KEEPALIVE=0s", "MARQUEE_KEEPALIVE"},
		{"MARQUEE_ADDR=nonsense", "MARQUEE_ADDR"},
		{"MARQUEE_LOG_LEVEL=loud", "MARQUEE_LOG_LEVEL"},
		{"MARQUEE_WRITE_TIMEOUT=1ns", "MARQUEE_WRITE_TIMEOUT"},
		{"MARQUEE_MAX_LAG_BYTES=10", "MARQUEE_MAX_LAG_BYTES"},
		{"MARQUEE_DRAIN_BATCHES=0", "MARQUEE_DRAIN_BATCHES"},
		{"MARQUEE_NATS_MAX_MESSAGE_BYTES=0", "MARQUEE_NATS_MAX_MESSAGE_BYTES"},
		{"MARQUEE_DEMO_RATE=-1", "MARQUEE_DEMO_RATE"},
		{"MARQUEE_HISTORY=0", "MARQUEE_HISTORY"},
		{"MARQUEE_MAX_FEED_BYTES=1000", "MARQUEE_MAX_FEED_BYTES"},
		{"MARQUEE_MAX_FEED_BYTES=16MiB", "MARQUEE_MAX_FEED_BYTES"},
		{"MARQUEE_MAX_STATE_BYTES=1000000", "MARQUEE_MAX_STATE_BYTES"},
		{"MARQUEE_FEED_IDLE_EVICT=1s", "MARQUEE_FEED_IDLE_EVICT"},
		{"MARQUEE_CONFLATE=fast", "MARQUEE_CONFLATE"},
		{"MARQUEE_CONFLATE=1s,2s", "MARQUEE_CONFLATE"},
		{"MARQUEE_CONFLATE=prices=300ms", "MARQUEE_CONFLATE"},
		{"MARQUEE_PROTECTED_FEEDS=scores", "MARQUEE_TOKEN_KEYS"},
		{"MARQUEE_TOKEN_KEYS=k1:short", "MARQUEE_TOKEN_KEYS"},
		{"MARQUEE_TOKEN_WINDOW=0", "MARQUEE_TOKEN_WINDOW"},
		{"MARQUEE_TOKEN_WINDOW=x", "MARQUEE_TOKEN_WINDOW"},
		{"MARQUEE_TOKEN_OVERLAP=10m", "MARQUEE_TOKEN_OVERLAP"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			err := run(context.Background(), []string{tt.env}, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestEmptyTurnsOff: MARQUEE_ADMIN_ADDR set to empty turns the admin
// listener off, as the README says (the env library alone would give it
// its default); unset, it is the default.
func TestEmptyTurnsOff(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, "127.0.0.1:9090"},
		{[]string{"MARQUEE_ADMIN_ADDR="}, ""},
		{[]string{"MARQUEE_ADMIN_ADDR= "}, ""},
		{[]string{"MARQUEE_ADMIN_ADDR=127.0.0.1:0"}, "127.0.0.1:0"},
	} {
		cfg, err := parseConfig(tt.env)
		if err != nil || cfg.AdminAddr != tt.want {
			t.Errorf("%q: admin %q, %v; want %q", tt.env, cfg.AdminAddr, err, tt.want)
		}
	}
}

// TestUnknownSettings: MARQUEE_ variables that are no setting are found,
// with the setting they most likely meant; settings and other variables
// are not.
func TestUnknownSettings(t *testing.T) {
	cfg, err := parseConfig([]string{"MARQUEE_PROTECTED_FEED=scores", "MARQUEE_SEGMENT_LENGHT=90s", "MARQUEE_FLUX=1",
		"MARQUEE_ADDR=:8080", "MARQUEE_ADMIN_ADDR=", "PATH=/bin", "MARQUEEX=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []unknownSetting{{"MARQUEE_FLUX", ""}, {"MARQUEE_PROTECTED_FEED", "MARQUEE_PROTECTED_FEEDS"}, {"MARQUEE_SEGMENT_LENGHT", "MARQUEE_SEGMENT_LENGTH"}}
	if !slices.Equal(cfg.unknown, want) {
		t.Errorf("unknown %v, want %v", cfg.unknown, want)
	}
	if got := editDistance("kitten", "sitting"); got != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", got)
	}
}

// TestDemoRestartKeepsGamesFresh: a second start on the same store shows
// the demo's current games only, not the previous run's as well.
func TestDemoRestartKeepsGamesFresh(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		addrs := make(chan string, 1)
		done := make(chan error, 1)
		env := []string{"MARQUEE_ADDR=127.0.0.1:0", "MARQUEE_ADMIN_ADDR=", "MARQUEE_DATA_DIR=" + dir,
			"MARQUEE_DRAIN_DELAY=0s", "MARQUEE_LOG_LEVEL=error", fmt.Sprintf("MARQUEE_DEMO_SEED=%d", i+1)}
		go func() {
			done <- run(ctx, env, io.Discard, func(pub, admin string) {
				if admin != "" {
					t.Errorf("MARQUEE_ADMIN_ADDR= started an admin listener on %s", admin)
				}
				addrs <- pub
			})
		}()
		var base string
		select {
		case a := <-addrs:
			base = "http://" + a
		case err := <-done:
			t.Fatalf("run %d: %v", i, err)
		}
		var snap wire.Snapshot
		deadline := time.Now().Add(20 * time.Second)
		for len(snap.Entries) < 6 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			snap.Entries = nil
			resp, err := http.Get(base + "/v1/feeds/scores/snapshot")
			if err == nil {
				json.NewDecoder(resp.Body).Decode(&snap)
				resp.Body.Close()
			}
		}
		// The demo keeps 8 games (one may be between a final and the
		// next kick-off); the previous run's games would add up to 8 more.
		if got := len(snap.Entries); got < 6 || got > 8 {
			t.Errorf("run %d: %d games, want 6 to 8", i, got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
}
