package feed

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func createStream(t *testing.T, js jetstream.JetStream, sc jetstream.StreamConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Right after a delete the server may still be removing the old
	// store ("error creating store for stream"): try again until ctx ends.
	for {
		_, err := js.CreateStream(ctx, sc)
		if err == nil {
			return
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "error creating store") {
			t.Fatalf("create stream %s: %v", sc.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deleteStream(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil {
		t.Fatalf("delete stream %s: %v", name, err)
	}
}

// TestJetStreamSourceStreamRecreated: an operator deletes the stream and
// creates it again; its sequences restart at 1. The source is not ready
// while the stream is missing, then reloads (reason recreated) and applies
// the new stream's messages, which the old state would have refused as
// duplicates.
func TestJetStreamSourceStreamRecreated(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	cfg.CreateStream, cfg.Stream = false, "MANAGED"
	pub := newPublisher(t, srv.ClientURL())
	sc := jetstream.StreamConfig{Name: "MANAGED", Subjects: []string{"feeds.>"}}
	createStream(t, pub.js, sc)
	for i := range 3 {
		pub.pub(fmt.Sprintf("feeds.prices.old%d", i), `{"old":true}`)
	}
	sink := newFakeSink()
	src, m, _ := startJS(t, cfg, sink)
	waitFor(t, "loaded", func() bool { return src.Status().Ready() && sink.count("prices") == 3 })

	deleteStream(t, pub.js, "MANAGED")
	waitFor(t, "stream missing reported", func() bool { return src.Status().StreamMissing })
	st := src.Status()
	if st.Ready() || !strings.Contains(st.Reason(), "stream missing") {
		t.Fatalf("status without the stream = %+v, reason %q", st, st.Reason())
	}
	t.Logf("reason while missing: %s", st.Reason())
	waitFor(t, "marquee_feed_stream_missing 1", func() bool { return testutil.ToFloat64(m.streamMissing) == 1 })
	if got := sink.count("prices"); got != 3 {
		t.Fatalf("state changed while the stream is missing: %d keys", got)
	}

	createStream(t, pub.js, sc)
	n1 := pub.pub("feeds.prices.new", `{"new":1}`)
	n2 := pub.pub("feeds.scores.new", `{"new":2}`)
	if n1 != 1 || n2 != 2 {
		t.Fatalf("new stream's sequences %d, %d, want 1, 2", n1, n2)
	}
	waitFor(t, "new messages applied after the reload", func() bool {
		return sink.has(n1) && sink.has(n2) && src.Status().Ready() && !sink.reloading()
	})
	want := map[string]map[string]string{"prices": {"new": `{"new":1}`}, "scores": {"new": `{"new":2}`}}
	if got := sink.snapshot(); !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("state = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(m.reloads[ReloadRecreated]); got != 1 {
		t.Errorf("reloads{recreated} = %v, want 1", got)
	}
	if got := sink.reloadCalls(); got != 1 {
		t.Errorf("Reload called %d times, want 1", got)
	}
	if got := testutil.ToFloat64(m.rejected[ReasonDuplicate]); got != 0 {
		t.Errorf("duplicates = %v: new sequences refused", got)
	}
	waitFor(t, "marquee_feed_stream_missing 0", func() bool { return testutil.ToFloat64(m.streamMissing) == 0 })
	n3 := pub.pub("feeds.prices.new", `{"new":3}`)
	waitFor(t, "live after the reload", func() bool { return sink.has(n3) })
}

// TestJetStreamSourceStreamRecreatedBehindItsBack: the stream is deleted and
// created again at once and gets more messages than before, so that neither
// a missing stream nor a lower last sequence gives it away: its creation
// time does.
func TestJetStreamSourceStreamRecreatedBehindItsBack(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	cfg.CreateStream, cfg.Stream = false, "MANAGED"
	pub := newPublisher(t, srv.ClientURL())
	sc := jetstream.StreamConfig{Name: "MANAGED", Subjects: []string{"feeds.>"}}
	createStream(t, pub.js, sc)
	pub.pub("feeds.prices.old", `{"old":true}`)
	sink := newFakeSink()
	src, m, _ := startJS(t, cfg, sink)
	waitFor(t, "loaded", func() bool { return src.Status().Ready() && sink.has(1) })

	deleteStream(t, pub.js, "MANAGED")
	createStream(t, pub.js, sc)
	var last uint64
	for i := range 5 {
		last = pub.pub(fmt.Sprintf("feeds.prices.k%d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	waitFor(t, "reloaded with the new stream", func() bool {
		return sink.count("prices") == 5 && sink.has(last) && src.Status().Ready()
	})
	if _, ok := sink.get("prices", "old"); ok {
		t.Error("old stream's key survived the reload")
	}
	if got := testutil.ToFloat64(m.reloads[ReloadRecreated]); got != 1 {
		t.Errorf("reloads{recreated} = %v, want 1", got)
	}
}

// TestJetStreamSourceStreamRecreatedByMarquee: with CreateStream the source
// creates the deleted stream again itself, then reloads.
func TestJetStreamSourceStreamRecreatedByMarquee(t *testing.T) {
	f := newJSFixture(t, nil)
	s1 := f.pub.pub("feeds.prices.old", `{"old":true}`)
	f.waitApplied(s1)
	deleteStream(t, f.pub.js, f.cfg.Stream)
	waitFor(t, "stream created again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := f.pub.js.Stream(ctx, f.cfg.Stream)
		return err == nil
	})
	waitFor(t, "reloaded", func() bool { return testutil.ToFloat64(f.m.reloads[ReloadRecreated]) == 1 && f.src.Status().Ready() })
	s2 := f.pub.pub("feeds.prices.new", `{"new":true}`)
	if s2 != 1 {
		t.Fatalf("sequence %d in the recreated stream, want 1", s2)
	}
	f.waitApplied(s2)
	if _, ok := f.sink.get("prices", "old"); ok {
		t.Error("old stream's key survived the reload")
	}
	sc := streamInfo(t, f.pub.js, f.cfg.Stream).Config
	if sc.MaxMsgsPerSubject != f.cfg.MaxMsgsPerSubject || sc.Subjects[0] != "feeds.>" {
		t.Errorf("recreated stream config = %+v", sc)
	}
}
