package feed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// metaMsg is a jetstream.Msg with chosen metadata, for handle.
type metaMsg struct {
	jetstream.Msg
	subject string
	md      jetstream.MsgMetadata
}

func (m metaMsg) Metadata() (*jetstream.MsgMetadata, error) { md := m.md; return &md, nil }
func (m metaMsg) Subject() string                           { return m.subject }
func (m metaMsg) Data() []byte                              { return []byte(`{"v":1}`) }

func msgAt(delivery, stream, pending uint64) metaMsg {
	return metaMsg{
		subject: fmt.Sprintf("feeds.prices.k%d", stream),
		md: jetstream.MsgMetadata{
			Sequence:   jetstream.SequencePair{Consumer: delivery, Stream: stream},
			NumPending: pending,
			Timestamp:  time.Unix(1700000000, 0),
		},
	}
}

// TestJetStreamHandleSkips runs the gap rule on handle directly (no Run).
func TestJetStreamHandleSkips(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	nc := connect(t, testConfig(srv.ClientURL()), nil)
	tests := []struct {
		name        string
		phase       phase
		exclusive   bool
		delivery    uint64 // of the next message; the consumer delivered 1 before
		seq         uint64 // after lastSeq 10
		wantReload  ReloadReason
		wantErr     error
		wantSkipped float64
		wantApplied bool
	}{
		{name: "consecutive live", phase: phaseLive, exclusive: true, delivery: 2, seq: 11, wantApplied: true},
		{name: "skip while replaying", phase: phaseReplay, exclusive: true, delivery: 2, seq: 15, wantApplied: true},
		{name: "skip while live", phase: phaseLive, exclusive: true, delivery: 2, seq: 15, wantSkipped: 4, wantApplied: true},
		{name: "skip on resume", phase: phaseResume, exclusive: true, delivery: 2, seq: 15, wantSkipped: 4, wantReload: ReloadGap},
		{name: "skip on resume, other subjects in the stream", phase: phaseResume, exclusive: false, delivery: 2, seq: 15, wantApplied: true},
		{name: "sequence back", phase: phaseLive, exclusive: true, delivery: 2, seq: 10, wantReload: ReloadRecreated},
		{name: "sequence back while replaying", phase: phaseReplay, exclusive: true, delivery: 2, seq: 3, wantReload: ReloadRecreated},
		{name: "delivery lost in flight", phase: phaseLive, exclusive: true, delivery: 3, seq: 12, wantErr: errLostInFlight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newFakeSink()
			m, _ := newTestMetrics(t)
			src, err := NewJetStreamSource(testConfig(srv.ClientURL()), nc, sink, testLogger(t), m)
			if err != nil {
				t.Fatal(err)
			}
			src.lastSeq, src.delivered, src.phase, src.excl = 10, 1, tt.phase, tt.exclusive
			r, _, err := src.handle(msgAt(tt.delivery, tt.seq, 5))
			if r != tt.wantReload || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("handle = %v, %v; want %v, %v", r, err, tt.wantReload, tt.wantErr)
			}
			if got := testutil.ToFloat64(m.skipped); got != tt.wantSkipped {
				t.Errorf("skipped = %v, want %v", got, tt.wantSkipped)
			}
			if got := sink.has(tt.seq); got != tt.wantApplied {
				t.Errorf("applied = %v, want %v", got, tt.wantApplied)
			}
			if tt.wantApplied && src.lastSeq != tt.seq {
				t.Errorf("lastSeq = %d, want %d", src.lastSeq, tt.seq)
			}
			if !tt.wantApplied && src.lastSeq != 10 {
				t.Errorf("lastSeq = %d after a message not applied", src.lastSeq)
			}
		})
	}
}

// TestJetStreamSourceGapReload: the consumer is lost while the stream
// removes messages the source has not read (an operator purges a subject,
// the per-subject limit discards others). The new consumer resumes past
// them: the source counts the skipped sequences, reloads, and ends with
// exactly the state a fresh replay gives.
func TestJetStreamSourceGapReload(t *testing.T) {
	f := newJSFixture(t, func(c *Config) { c.MaxMsgsPerSubject = 2 })
	js, err := jetstream.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	f.pub.pub("feeds.prices.A", `{"a":1}`)
	k1 := f.pub.pub("feeds.prices.K", `{"k":1}`)
	f.waitApplied(k1)

	held, release := f.sink.holdApplies()
	b := f.pub.pub("feeds.prices.B", `{"b":1}`)
	<-held // the source is inside Apply(B): it reads nothing more
	if n := deleteConsumers(t, js, f.cfg.Stream); n != 1 {
		t.Fatalf("deleted %d consumers, want 1", n)
	}
	k2 := f.pub.pub("feeds.prices.K", `{"k":2}`)
	if err := purgeSubject(js, f.cfg.Stream, "feeds.prices.K"); err != nil {
		t.Fatal(err)
	}
	var x uint64
	for i := range 5 { // MaxMsgsPerSubject 2 keeps the last two
		x = f.pub.pub("feeds.prices.X", fmt.Sprintf(`{"x":%d}`, i))
	}
	c := f.pub.pub("feeds.prices.C", `{"c":1}`)
	if k2 != b+1 || x != k2+5 || c != x+1 {
		t.Fatalf("unexpected sequences b=%d k2=%d x=%d c=%d", b, k2, x, c)
	}
	release()

	waitFor(t, "reload done", func() bool {
		return f.sink.reloadCalls() == 1 && f.sink.loadedCalls() == 2 && !f.sink.reloading() && f.src.Status().Ready()
	})
	// Removed after B: K's two messages (purged) and X's first three.
	if got, want := testutil.ToFloat64(f.m.skipped), 4.0; got != want {
		t.Errorf("skipped = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(f.m.reloads[ReloadGap]); got != 1 {
		t.Errorf("reloads{gap} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.m.reloads[ReloadRecreated]); got != 0 {
		t.Errorf("reloads{recreated} = %v, want 0", got)
	}
	want := map[string]map[string]string{"prices": {"A": `{"a":1}`, "B": `{"b":1}`, "X": `{"x":4}`, "C": `{"c":1}`}}
	if got := f.sink.snapshot(); !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("state after reload = %v, want %v (K purged)", got, want)
	}
	ev := f.sink.eventLog()
	t.Logf("sink events: %v", ev)
	if i, j := indexOf(ev, "reload"), lastIndexOf(ev, "loaded"); i < 0 || j < i {
		t.Errorf("events %v: want reload, then loaded", ev)
	}

	// And live again.
	d := f.pub.pub("feeds.prices.D", `{"d":1}`)
	f.waitApplied(d)
	if st := f.src.Status(); !st.Ready() || st.Reloading {
		t.Errorf("status after reload = %+v (%s)", st, st.Reason())
	}
}

func purgeSubject(js jetstream.JetStream, stream, subject string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(subject))
}

func indexOf(ss []string, s string) int {
	for i, v := range ss {
		if v == s {
			return i
		}
	}
	return -1
}

func lastIndexOf(ss []string, s string) int {
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i] == s {
			return i
		}
	}
	return -1
}
