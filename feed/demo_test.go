package feed

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/feed/demogen"
)

// TestDemoMessagesValid checks that feed accepts every message the demo
// publishes (subject shape, key syntax, size, JSON) under the default
// prefix and limits. The shapes themselves are demogen's tests.
func TestDemoMessagesValid(t *testing.T) {
	d := NewDemo(DemoConfig{Rate: 5, Seed: 7}, nil, nil)
	lim := DefaultConfig().Limits()
	now := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	msgs := d.gen.Initial(now)
	for range 20000 {
		msgs = append(msgs, d.gen.Step(now)...)
	}
	deletes := 0
	for _, m := range msgs {
		subject := d.cfg.SubjectPrefix + "." + m.Subject
		feed, u, reason := Parse(subject, m.Body, lim)
		if reason != ReasonNone {
			t.Fatalf("Parse(%s, %s) = %s", subject, m.Body, reason)
		}
		if feed != demogen.PricesFeed && feed != demogen.ScoresFeed {
			t.Fatalf("%s: feed %q", subject, feed)
		}
		if u.Value == nil {
			deletes++
		}
	}
	if deletes == 0 {
		t.Error("no delete in 20000 steps")
	}
}

func TestDemoRunPublishes(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	sink := newFakeSink()
	m, _ := newTestMetrics(t)
	src, err := NewSource(cfg, connect(t, cfg, m), sink, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "loaded", func() bool { return src.Status().Loaded })

	d := NewDemo(DemoConfig{Rate: 200, Seed: 1, SubjectPrefix: "feeds"}, connect(t, cfg, nil), testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "full board", func() bool { return sink.count("prices") == 20 && sink.count("scores") == 8 })
	waitFor(t, "updates", func() bool { return len(sink.applied()) > 100 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range Reasons() {
		if r == ReasonDuplicate {
			continue
		}
		if v := testutil.ToFloat64(m.rejected[r]); v != 0 {
			t.Errorf("demo message rejected: %s = %v", r, v)
		}
	}
	if err := d.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v", err)
	}
}

func TestNewDemoDefaults(t *testing.T) {
	d := NewDemo(DemoConfig{Rate: -1}, nil, nil)
	if d.cfg.Rate != 5 || d.cfg.SubjectPrefix != "feeds" {
		t.Fatalf("defaults not applied: %+v", d.cfg)
	}
	if n := len(d.gen.Initial(time.Now())); n != 28 {
		t.Fatalf("%d keys, want 28 (20 prices, 8 games)", n)
	}
}

// TestDemoRunPublishesGenerator checks that Run publishes the generator's
// messages, in order, under the prefix, stamped by the demo's clock.
func TestDemoRunPublishesGenerator(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	sc := connect(t, cfg, nil)
	sub, err := sc.SubscribeSync("x.y.>")
	if err != nil {
		t.Fatal(err)
	}
	// The server has the subscription once the flush returns; the demo
	// publishes on another connection, and without this its first
	// messages could go out before (seen: message 0 was a game, the
	// prices before it lost).
	if err := sc.Flush(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	d := NewDemo(DemoConfig{Rate: 500, Seed: 3, SubjectPrefix: "x.y"}, connect(t, cfg, nil), testLogger(t))
	d.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	gen := demogen.New(3)
	want := gen.Initial(now)
	for len(want) < 100 {
		want = append(want, gen.Step(now)...)
	}
	for i, w := range want[:100] {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got, want := msg.Subject, "x.y."+w.Subject; got != want {
			t.Fatalf("message %d: subject %s, want %s", i, got, want)
		}
		if !bytes.Equal(msg.Data, w.Body) {
			t.Fatalf("message %d (%s): body %s, want %s", i, msg.Subject, msg.Data, w.Body)
		}
	}
}

func TestResetDemoScores(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	nc := connect(t, cfg, nil)
	if err := ResetDemoScores(context.Background(), nc, cfg); err != nil {
		t.Fatalf("without a stream: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: cfg.Stream, Subjects: []string{cfg.SubjectPrefix + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, srv.ClientURL())
	pub.pub("feeds.prices.AAPL", `{"price":1}`)
	pub.pub("feeds.scores.nba.bos-lal", `{"status":"live"}`)
	pub.pub("feeds.scores.nhl.mtl-tor", `{"status":"final"}`)
	if err := ResetDemoScores(ctx, nc, cfg); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Subjects, map[string]uint64{"feeds.prices.AAPL": 1}; !maps.Equal(got, want) {
		t.Errorf("after the reset the stream holds %v, want %v", got, want)
	}
}
