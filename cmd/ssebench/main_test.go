package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"marquee/internal/testenv"
	"marquee/wire"
)

func TestParseFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "ftp://x"},
		{"-url", "http://x", "-viewers", "0"},
		{"-url", "http://x", "-mode", "hls"},
		{"-url", "http://x", "-duration", "5s", "-ramp", "5s"},
		{"-url", "http://x", "-local-addrs", "127.0.0.9-127.0.0.1"},
		{"-url", "http://x", "extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	c, err := parseFlags([]string{"-url", "http://127.0.0.1:8080/", "-local-addrs", "127.0.0.1-127.0.0.3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.localAddrs, []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}; !slices.Equal(got, want) {
		t.Errorf("local addrs %v, want %v", got, want)
	}
	if c.base.String() != "http://127.0.0.1:8080" {
		t.Errorf("base %s", c.base)
	}
}

func TestUpdateTime(t *testing.T) {
	for _, tc := range []struct {
		data string
		ms   int64
		ok   bool
	}{
		{`{"key":"a","seq":3,"time":1700000000123,"value":{"time":"x"}}`, 1700000000123, true},
		{`{"key":"a","seq":3,"value":{}}`, 0, false},
		// What an update event's data is (the fast path must keep up with
		// the wire type's field names).
		{string(mustJSON(t, wire.Update{Key: "a", Seq: 3, Time: 1700000000456, Value: json.RawMessage(`{"time":1}`)})), 1700000000456, true},
	} {
		ms, ok := updateTime([]byte(tc.data))
		if ms != tc.ms || ok != tc.ok {
			t.Errorf("updateTime(%s) = %d, %v", tc.data, ms, ok)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	if p50 := h.quantileMs(0.5); p50 < 47.5 || p50 > 52.5 {
		t.Errorf("p50 = %vms", p50)
	}
	if p99 := h.quantileMs(0.99); p99 < 94 || p99 > 100 {
		t.Errorf("p99 = %vms", p99)
	}
	if got := h.maxMs(); got != 100 {
		t.Errorf("max = %vms", got)
	}
	if got := newHistogram().quantileMs(0.5); got != 0 {
		t.Errorf("empty p50 = %v", got)
	}
}

// TestRun runs ssebench against a real origin (2 s segments, 500 ms parts)
// in each mode while updates are published: every viewer connects, follows
// segments (or parts), and receives updates; the run stops by itself.
func TestRun(t *testing.T) {
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 2 * time.Second, PartLength: 500 * time.Millisecond})
	n.Publish("feeds.scores.init", `{"x":0}`)
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := o.Hub.Feed("scores"); !ok {
			return fmt.Errorf("no feed")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			n.Pub.Publish(fmt.Sprintf("feeds.scores.k%d", i%3), fmt.Appendf(nil, `{"i":%d}`, i))
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for _, mode := range []string{"stream", "parts", "direct"} {
		t.Run(mode, func(t *testing.T) {
			var out bytes.Buffer
			args := []string{"-url", o.URL, "-viewers", "20", "-duration", "5s", "-ramp", "500ms", "-mode", mode, "-json", "-local-addrs", "127.0.0.1-127.0.0.2"}
			start := time.Now()
			if err := run(context.Background(), args, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("run took %s for -duration 5s", d)
			}
			var r Report
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			t.Logf("%s", strings.TrimSpace(out.String()))
			if r.Feed != "scores" || r.PeakConnected != 20 || r.Updates == 0 || r.Errors != 0 {
				t.Errorf("report %+v", r)
			}
			if mode == "stream" && r.Segments < 20 {
				t.Errorf("only %d segments completed by 20 viewers in 5s of 2s segments", r.Segments)
			}
			// Parts mode: each viewer joins within 500ms and then completes
			// a part every 500ms (upto included) until the 5s are up.
			if mode == "parts" && (r.Parts < 20*7 || r.Segments < 20) {
				t.Errorf("only %d parts and %d segments completed by 20 viewers in 5s of 500ms parts", r.Parts, r.Segments)
			}
		})
	}
}
