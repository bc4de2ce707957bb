package feed

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsLint(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.accepted.WithLabelValues("prices").Inc()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, f := range families {
		names[f.GetName()] = len(f.GetMetric())
	}
	for _, n := range []string{
		"marquee_feed_messages_accepted_total", "marquee_feed_messages_rejected_total", "marquee_nats_connected",
		"marquee_nats_reconnects_total", "marquee_nats_disconnects_total", "marquee_feed_loaded",
		"marquee_feed_last_sequence", "marquee_feed_pending_messages", "marquee_feed_skipped_messages_total",
		"marquee_feed_reloads_total", "marquee_feed_consumer_restarts_total", "marquee_feed_stalled",
		"marquee_feed_stream_missing", "marquee_feed_last_progress_timestamp_seconds",
	} {
		if _, ok := names[n]; !ok {
			t.Errorf("metric %s not exported", n)
		}
	}
	if got, want := names["marquee_feed_messages_rejected_total"], len(Reasons()); got != want {
		t.Errorf("rejected reasons pre-created = %d, want %d", got, want)
	}
	for _, r := range Reasons() {
		if got := testutil.ToFloat64(m.rejected[r]); got != 0 {
			t.Errorf("rejected{%s} = %v, want 0", r, got)
		}
	}
	if got, want := names["marquee_feed_reloads_total"], len(ReloadReasons()); got != want || want != 2 {
		t.Errorf("reload reasons pre-created = %d, want %d (gap, recreated)", got, want)
	}
	for _, r := range ReloadReasons() {
		if got := testutil.ToFloat64(m.reloads[r]); got != 0 {
			t.Errorf("reloads{%s} = %v, want 0", r, got)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLogLimiter(10 * time.Second)
	l.now = func() time.Time { return now }
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("first line suppressed")
	}
	for range 3 {
		if ok, _ := l.allow("a"); ok {
			t.Fatal("line within the interval allowed")
		}
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("other key suppressed")
	}
	now = now.Add(10 * time.Second)
	ok, suppressed := l.allow("a")
	if !ok || suppressed != 3 {
		t.Fatalf("after interval: ok=%v suppressed=%d, want true 3", ok, suppressed)
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("interval not restarted")
	}
}
