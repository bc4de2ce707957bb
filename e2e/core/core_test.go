// Package core_test checks the core of marquee end to end: NATS in, HTTP
// segments out.
package core_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/internal/testenv"
	"marquee/origin"
	"marquee/sse"
	"marquee/wire"
)

var update = flag.Bool("update", false, "rewrite golden files")

// get opens url with extra headers and returns the response (caller closes).
func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

type readResult struct {
	body  []byte
	clean bool // the body ended with the chunked terminator (not aborted)
	err   error
}

func readAll(resp *http.Response) chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- readResult{body: b, clean: err == nil, err: err}
	}()
	return ch
}

func events(t *testing.T, b []byte) []sse.Event {
	t.Helper()
	d := sse.NewDecoder(bytes.NewReader(b))
	var out []sse.Event
	for {
		ev, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		out = append(out, ev)
	}
}

// freshSegment returns the current segment, first waiting for the next
// one when less than half of the current one is left, so that a check does
// not meet a segment end it does not expect.
func freshSegment(t *testing.T, o *testenv.Origin, feed string) int64 {
	t.Helper()
	d := o.Descriptor(feed)
	if time.Until(time.UnixMilli(d.SegmentEnd)) < time.Duration(d.SegmentLength*float64(time.Second))/2 {
		time.Sleep(time.Until(time.UnixMilli(d.SegmentEnd)) + 50*time.Millisecond)
		d = o.Descriptor(feed)
	}
	return d.Segment
}

func startOrigin(t *testing.T, seg time.Duration) (*testenv.NATS, *testenv.Origin) {
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: seg}) // creates the stream
	n.Publish("feeds.scores.init", `{"x":0}`)                           // and the feed
	waitFeed(t, o, "scores")
	return n, o
}

func waitFeed(t *testing.T, o *testenv.Origin, name string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := o.Hub.Feed(name); !ok {
			return errors.New("feed " + name + " not there")
		}
		return nil
	})
}

// TestSegmentBytesIdentical: an early viewer (held until the segment
// starts), a viewer that joins half-way and a viewer with cookies, a query
// string and Last-Event-ID all receive the same bytes from byte 0, ending
// cleanly with a next event; a fourth viewer after the end gets the same
// bytes at once.
func TestSegmentBytesIdentical(t *testing.T) {
	n, o := startOrigin(t, 3*time.Second)
	d := o.Descriptor("scores")
	next := d.Segment + 1
	url := fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, next)

	early := get(t, url, nil) // held until the segment starts
	if early.StatusCode != 200 {
		t.Fatalf("early: %d", early.StatusCode)
	}
	earlyBody := readAll(early)
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n.Pub.Publish("feeds.scores.g"+strconv.Itoa(i%5), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		}
	}()
	defer close(stop)
	time.Sleep(time.Until(time.UnixMilli(d.SegmentEnd).Add(1500 * time.Millisecond)))
	late := get(t, url, nil)
	odd := get(t, url+"?t=123&cb=x", map[string]string{"Cookie": "session=abc", "Last-Event-ID": "999999", "Cache-Control": "no-cache"})
	if ck := late.Header.Get("Set-Cookie"); ck != "" {
		t.Errorf("Set-Cookie: %q", ck)
	}
	a, b, c := <-earlyBody, <-readAll(late), <-readAll(odd)
	for i, r := range []readResult{a, b, c} {
		if !r.clean {
			t.Fatalf("viewer %d: not a clean end: %v", i, r.err)
		}
	}
	if !bytes.Equal(a.body, b.body) || !bytes.Equal(a.body, c.body) {
		t.Fatalf("bodies differ: %d, %d, %d bytes", len(a.body), len(b.body), len(c.body))
	}
	evs := events(t, a.body)
	if len(evs) < 10 {
		t.Fatalf("only %d events", len(evs))
	}
	if evs[0].Type != "snapshot" || evs[len(evs)-1].Type != "next" {
		t.Errorf("first %q last %q", evs[0].Type, evs[len(evs)-1].Type)
	}
	// A closed segment within retention: all at once, immutable.
	after := get(t, url, nil)
	r := <-readAll(after)
	if !bytes.Equal(r.body, a.body) {
		t.Errorf("retained segment differs")
	}
	if got := after.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") {
		t.Errorf("closed segment Cache-Control = %q", got)
	}
	if got := o.Metric("marquee_segment_responses_total", map[string]string{"feed": "scores", "kind": "held"}); got < 1 {
		t.Errorf("held responses = %v", got)
	}
}

// TestRotationCarriesState: with 2 s segments the next event arrives and the
// next segment's snapshot contains every update of the previous one.
func TestRotationCarriesState(t *testing.T) {
	n, o := startOrigin(t, 2*time.Second)
	seg := freshSegment(t, o, "scores")
	resp := get(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg), nil)
	body := readAll(resp)
	want := map[string]string{}
	for i := range 30 {
		k := "k" + strconv.Itoa(i%7)
		v := fmt.Sprintf(`{"i":%d}`, i)
		n.Publish("feeds.scores."+k, v)
		want[k] = v
	}
	n.Publish("feeds.scores.k6", "") // delete
	delete(want, "k6")
	r := <-body
	if !r.clean {
		t.Fatalf("segment did not end cleanly: %v", r.err)
	}
	evs := events(t, r.body)
	last := evs[len(evs)-1]
	if last.Type != "next" {
		t.Fatalf("last event %q", last.Type)
	}
	var nx wire.Next
	json.Unmarshal(last.Data, &nx)
	if nx.Segment != seg+1 || nx.URL != fmt.Sprintf("/v1/feeds/scores/segments/%d", seg+1) {
		t.Fatalf("next = %+v", nx)
	}
	// Fold this segment's events ourselves and compare with the next snapshot.
	state := map[string]string{}
	var maxSeq uint64
	for _, ev := range evs {
		switch ev.Type {
		case "snapshot":
			var s wire.Snapshot
			json.Unmarshal(ev.Data, &s)
			for k, v := range s.Entries {
				state[k] = string(v)
			}
			maxSeq = s.Seq
		case "update":
			var u wire.Update
			json.Unmarshal(ev.Data, &u)
			if u.Seq <= maxSeq {
				t.Errorf("update seq %d not increasing", u.Seq)
			}
			maxSeq = u.Seq
			if string(u.Value) == "null" {
				delete(state, u.Key)
			} else {
				state[u.Key] = string(u.Value)
			}
		}
	}
	r2 := <-readAll(get(t, o.URL+nx.URL, nil))
	evs2 := events(t, r2.body)
	var s2 wire.Snapshot
	json.Unmarshal(evs2[0].Data, &s2)
	if s2.Seq != maxSeq {
		t.Errorf("next snapshot seq %d, want %d", s2.Seq, maxSeq)
	}
	got := map[string]string{}
	for k, v := range s2.Entries {
		got[k] = string(v)
	}
	if fmt.Sprint(got) != fmt.Sprint(state) {
		t.Errorf("next snapshot = %v\nfolded       = %v", got, state)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s = %s, want %s", k, got[k], v)
		}
	}
}

// TestRestartKeepsState: after restarting the origin on the same JetStream
// store the snapshot is complete and ids continue.
func TestRestartKeepsState(t *testing.T) {
	n, o := startOrigin(t, 3*time.Second)
	for i := range 20 {
		n.Publish("feeds.scores.k"+strconv.Itoa(i), fmt.Sprintf(`{"i":%d}`, i))
	}
	n.Publish("feeds.scores.k3", "")
	var before wire.Snapshot
	testenv.Eventually(t, 10*time.Second, func() error {
		before.Entries = nil // Unmarshal would merge into the old map
		testenv.GetJSON(t, o.URL+"/v1/feeds/scores/snapshot", &before)
		// init + 20 - k3. Twenty entries alone is also the state before
		// k19 (init + k0…k18); k3's delete is the last message, so k3
		// gone with twenty entries means every message is applied.
		if _, ok := before.Entries["k3"]; ok || len(before.Entries) != 20 {
			return fmt.Errorf("%d entries, k3 present %v", len(before.Entries), ok)
		}
		return nil
	})
	o.Restart()
	var after wire.Snapshot
	testenv.GetJSON(t, o.URL+"/v1/feeds/scores/snapshot", &after)
	if after.Seq != before.Seq || fmt.Sprint(after.Entries) != fmt.Sprint(before.Entries) {
		t.Fatalf("after restart seq %d (%d entries), before %d (%d entries)", after.Seq, len(after.Entries), before.Seq, len(before.Entries))
	}
	seg := freshSegment(t, o, "scores") // the reads below must not meet the segment end
	resp := get(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg), nil)
	defer resp.Body.Close()
	n.Publish("feeds.scores.k1", `{"i":"new"}`)
	dec := sse.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "snapshot" {
			if ev.ID != strconv.FormatUint(before.Seq, 10) {
				t.Errorf("snapshot id %s, want %d", ev.ID, before.Seq)
			}
			continue
		}
		if ev.Type == "update" {
			id, _ := strconv.ParseUint(ev.ID, 10, 64)
			if id != before.Seq+1 {
				t.Errorf("first id after restart %d, want %d", id, before.Seq+1)
			}
			break
		}
	}
}

// TestBadMessages: every kind of bad message is counted by reason and
// dropped, and the good message after them is served.
func TestBadMessages(t *testing.T) {
	n, o := startOrigin(t, 3*time.Second)
	seg := freshSegment(t, o, "scores") // the reads below must not meet the segment end
	resp := get(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg), nil)
	defer resp.Body.Close()
	bad := []struct{ subject, body, reason string }{
		{"feeds.scores.a", `{"unterminated`, "bad_json"},
		{"feeds.scores.a", `[1,2]`, "not_object"},
		{"feeds.scores.a", `"str"`, "not_object"},
		{"feeds.scores.a", `{"big":"` + strings.Repeat("x", 70000) + `"}`, "too_large"},
		{"feeds.scores.bad$key", `{}`, "bad_key"},
		{"feeds.scores.k\xff", `{}`, "bad_key"},
		{"feeds.scores.a", "{\"s\":\"\xff\"}", "bad_json"},
		{"feeds.scores", `{}`, "bad_subject"},
		{"feeds.sc@res.a", `{}`, "bad_feed"},
	}
	for _, b := range bad {
		n.Publish(b.subject, b.body)
	}
	n.Publish("feeds.scores.good", `{"ok":true}`)
	dec := sse.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "update" {
			var u wire.Update
			json.Unmarshal(ev.Data, &u)
			if u.Key != "good" {
				t.Fatalf("unexpected update %s", ev.Data)
			}
			break
		}
	}
	want := map[string]float64{}
	for _, b := range bad {
		want[b.reason]++
	}
	for reason, n := range want {
		testenv.Eventually(t, 5*time.Second, func() error {
			if got := o.Metric("marquee_feed_messages_rejected_total", map[string]string{"reason": reason}); got != n {
				return fmt.Errorf("rejected{%s} = %v, want %v", reason, got, n)
			}
			return nil
		})
	}
	if probs, err := testutil.GatherAndLint(o.Registry); err != nil || len(probs) > 0 {
		t.Errorf("metric lint: %v %v", err, probs)
	}
}

// TestBadRequests: bad segment numbers, unknown feeds and methods get clear
// errors that no edge may cache.
func TestBadRequests(t *testing.T) {
	_, o := startOrigin(t, 3*time.Second)
	cur := o.Descriptor("scores").Segment
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/v1/feeds/nope", 404},
		{"GET", "/v1/feeds/nope/segments/1", 404},
		{"GET", "/v1/feeds/scores/segments/abc", 400},
		{"GET", "/v1/feeds/scores/segments/-1", 400},
		{"GET", "/v1/feeds/scores/segments/0" + strconv.FormatInt(cur, 10), 400},
		{"GET", "/v1/feeds/scores/segments/99999999999999999999", 400},
		{"GET", "/v1/feeds/scores/segments/" + strconv.FormatInt(cur+5, 10), 404},
		{"GET", "/v1/feeds/scores/segments/" + strconv.FormatInt(cur-100, 10), 410},
		{"GET", "/v1/feeds/scores/segments/1", 410},
		{"POST", "/v1/feeds/scores/segments/" + strconv.FormatInt(cur, 10), 405},
		{"DELETE", "/v1/feeds", 405},
		{"GET", "/nope", 404},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, o.URL+tt.path+"?x=1", nil)
		req.Header.Set("Cookie", "a=b")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s = %d, want %d (%s)", tt.method, tt.path, resp.StatusCode, tt.code, body)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", tt.method, tt.path, got)
		}
		var e wire.Error
		if json.Unmarshal(body, &e) != nil || e.Message == "" {
			t.Errorf("%s %s: body %q is not a JSON error", tt.method, tt.path, body)
		}
	}
}

// TestHeadersGolden records the headers of each response class.
func TestHeadersGolden(t *testing.T) {
	_, o := startOrigin(t, 3*time.Second)
	seg := freshSegment(t, o, "scores")
	var out strings.Builder
	for _, p := range []string{
		"/v1/feeds",
		"/v1/feeds/scores",
		"/v1/feeds/scores/snapshot",
		fmt.Sprintf("/v1/feeds/scores/segments/%d", seg),
		"/v1/feeds/scores/events",
		"/v1/feeds/scores/segments/1",
		"/healthz",
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", o.URL+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		recordHeaders(&out, strings.ReplaceAll(p, strconv.FormatInt(seg, 10), "{current}"), resp)
	}
	checkGolden(t, "headers.golden", out.String())
}

// recordHeaders writes the status and the sorted header of resp under
// name, with what changes from run to run masked.
func recordHeaders(out *strings.Builder, name string, resp *http.Response) {
	fmt.Fprintf(out, "%s %d\n", name, resp.StatusCode)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.Join(resp.Header[k], ", ")
		switch k {
		case "Date", "Content-Length", "Marquee-Response-Id", "Marquee-Segment":
			v = "*"
		case "Cache-Control", "Cdn-Cache-Control":
			v = maskNumber(v, "s-maxage=")
			if strings.Contains(name, "{current}") {
				v = maskNumber(v, "max-age=")
			}
		}
		fmt.Fprintf(out, "  %s: %s\n", k, v)
	}
}

// checkGolden compares got with testdata/name (rewritten with -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("headers differ from %s (run with -update and review the diff):\n%s", golden, got)
	}
}

func maskNumber(v, prefix string) string {
	i := strings.Index(v, prefix)
	if i < 0 || (prefix == "max-age=" && strings.HasPrefix(v[i+len(prefix):], "0")) {
		return v
	}
	j := i + len(prefix)
	k := j
	for k < len(v) && v[k] >= '0' && v[k] <= '9' {
		k++
	}
	return v[:j] + "N" + v[k:]
}

// TestDirectResume: direct mode starts with a snapshot, resumes from
// Last-Event-ID without a snapshot, and falls back to a snapshot for an
// unusable id.
func TestDirectResume(t *testing.T) {
	n, o := startOrigin(t, 3*time.Second)
	for i := range 5 {
		n.Publish("feeds.scores.k"+strconv.Itoa(i), `{}`)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if o.Descriptor("scores").Keys != 6 {
			return errors.New("not yet")
		}
		return nil
	})
	seq := o.Descriptor("scores").Seq
	first := func(hdr map[string]string) sse.Event {
		resp := get(t, o.URL+"/v1/feeds/scores/events", hdr)
		defer resp.Body.Close()
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("direct Cache-Control %q", got)
		}
		ev, err := sse.NewDecoder(resp.Body).Next()
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if ev := first(nil); ev.Type != "snapshot" || ev.ID != strconv.FormatUint(seq, 10) {
		t.Errorf("fresh: %s id %s", ev.Type, ev.ID)
	}
	if ev := first(map[string]string{"Last-Event-ID": strconv.FormatUint(seq-2, 10)}); ev.Type != "update" || ev.ID != strconv.FormatUint(seq-1, 10) {
		t.Errorf("resume: %s id %s, want update %d", ev.Type, ev.ID, seq-1)
	}
	for _, id := range []string{"garbage", "99999999999", "-1", strings.Repeat("9", 100)} {
		if ev := first(map[string]string{"Last-Event-ID": id}); ev.Type != "snapshot" {
			t.Errorf("Last-Event-ID %q: got %s", id, ev.Type)
		}
	}
}

// TestDrainAbortsOpenSegment: at shutdown readiness goes 503 and an open
// segment's response is aborted (no clean end an edge could cache).
func TestDrainAbortsOpenSegment(t *testing.T) {
	_, o := startOrigin(t, 10*time.Second)
	seg := freshSegment(t, o, "scores") // the drain must come before the segment end
	resp := get(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg), nil)
	body := readAll(resp)
	direct := readAll(get(t, o.URL+"/v1/feeds/scores/events", nil))
	done := make(chan struct{})
	go func() { o.Stop(); close(done) }()
	r := <-body
	if r.clean {
		t.Fatalf("open segment ended cleanly at drain (%d bytes)", len(r.body))
	}
	if !errors.Is(r.err, io.ErrUnexpectedEOF) {
		t.Logf("abort error: %v", r.err)
	}
	<-direct
	<-done
}

// TestSlowReaderClosed: a viewer that stops reading is disconnected and
// counted; the other viewers and the publisher carry on.
func TestSlowReaderClosed(t *testing.T) {
	n := testenv.StartNATS(t)
	ocfg := origin.Defaults()
	ocfg.WriteTimeout = 200 * time.Millisecond
	ocfg.MaxLagBytes = 8 << 20 // the write timeout is what trips here
	ocfg.DrainDelay = 0
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 30 * time.Second, Origin: &ocfg})
	n.Publish("feeds.scores.init", `{}`)
	waitFeed(t, o, "scores")
	// At least 15 s of the segment left: its end would end the stuck
	// viewer's response before the socket buffers (megabytes) fill.
	seg := freshSegment(t, o, "scores")
	// A raw connection with a tiny receive buffer that never reads.
	conn, err := net.Dial("tcp", o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/feeds/scores/segments/%d HTTP/1.1\r\nHost: x\r\n\r\n", seg)
	good := get(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg), nil)
	defer good.Body.Close()
	go io.Copy(io.Discard, bufio.NewReader(good.Body))
	big := `{"pad":"` + strings.Repeat("x", 60000) + `"}`
	testenv.Eventually(t, 30*time.Second, func() error {
		n.Publish("feeds.scores.big", big)
		if got := o.Metric("marquee_slow_readers_closed_total", map[string]string{"mode": "stream"}); got < 1 {
			return fmt.Errorf("slow readers closed = %v", got)
		}
		return nil
	})
	if got := o.Metric("marquee_http_open_streams", map[string]string{"mode": "stream"}); got != 1 {
		t.Errorf("open streams = %v, want 1 (the good viewer)", got)
	}
}

// TestNoGoroutineLeak: after viewers leave and the origin stops, the
// goroutine count returns to where it was.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		n := testenv.StartNATS(t)
		o := testenv.StartOrigin(t, n, testenv.Options{})
		n.Publish("feeds.scores.init", `{}`)
		waitFeed(t, o, "scores")
		seg := o.Descriptor("scores").Segment
		for range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg+1), nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			cancel()
		}
		o.Stop()
		n.Stop()
	}()
	http.DefaultClient.CloseIdleConnections()
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := runtime.NumGoroutine(); got > base+2 {
			return fmt.Errorf("%d goroutines, %d before", got, base)
		}
		return nil
	})
}
