package core_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func fetch(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestPartsAddUpToSegment: following a segment part by part (each request
// held until its part is finished) yields exactly the stream-mode bytes;
// upto/k is the prefix; finished parts are immutable with Content-Length;
// concurrent held requests for one part get identical bytes.
func TestPartsAddUpToSegment(t *testing.T) {
	n, o := startOrigin(t, 3*time.Second)
	d := o.Descriptor("scores")
	if d.Parts != 3 || d.PartURL == "" || !strings.Contains(fmt.Sprint(d.Modes), "parts") {
		t.Fatalf("descriptor: %+v", d)
	}
	seg := d.Segment + 1 // a whole segment, from its first part
	stream := readAll(get(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d", o.URL, seg), nil))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			n.Pub.Publish("feeds.scores.p"+strconv.Itoa(i%4), []byte(fmt.Sprintf(`{"i":%d}`, i)))
		}
	}()
	var all []byte
	for k := 0; k < d.Parts; k++ {
		url := fmt.Sprintf("%s/v1/feeds/scores/segments/%d/parts/%d", o.URL, seg, k)
		var wg sync.WaitGroup
		bodies := make([][]byte, 3)
		for i := range bodies {
			wg.Go(func() {
				code, h, b := fetch(t, url)
				if code != 200 {
					t.Errorf("part %d: %d %s", k, code, b)
				}
				if cc := h.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
					t.Errorf("part %d Cache-Control %q", k, cc)
				}
				if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(b)) {
					t.Errorf("part %d Content-Length %q for %d bytes", k, cl, len(b))
				}
				bodies[i] = b
			})
		}
		wg.Wait()
		for i := 1; i < len(bodies); i++ {
			if !bytes.Equal(bodies[0], bodies[i]) {
				t.Fatalf("part %d: concurrent requests got different bytes", k)
			}
		}
		all = append(all, bodies[0]...)
		_, _, up := fetch(t, fmt.Sprintf("%s/v1/feeds/scores/segments/%d/upto/%d", o.URL, seg, k))
		if !bytes.Equal(up, all) {
			t.Errorf("upto %d differs from parts 0..%d", k, k)
		}
	}
	s := <-stream
	if !bytes.Equal(all, s.body) {
		t.Fatalf("parts (%d bytes) differ from the segment (%d bytes)", len(all), len(s.body))
	}
	if got := o.Metric("marquee_part_held_total", map[string]string{"feed": "scores", "kind": "part"}); got < 1 {
		t.Errorf("no part was held (%v)", got)
	}
	events(t, all) // parses
}

func TestPartsBadRequests(t *testing.T) {
	_, o := startOrigin(t, 3*time.Second)
	cur := o.Descriptor("scores").Segment
	base := o.URL + "/v1/feeds/scores/segments/"
	tests := []struct {
		path string
		code int
	}{
		{fmt.Sprintf("%d/parts/3", cur), 404},      // out of range: 3 parts
		{fmt.Sprintf("%d/parts/x", cur), 400},      // not a number
		{fmt.Sprintf("%d/parts/01", cur), 400},     // not canonical
		{fmt.Sprintf("%d/parts/0", cur+3), 404},    // too far ahead
		{fmt.Sprintf("%d/upto/2", cur+3), 404},     // too far ahead
		{fmt.Sprintf("%d/parts/0", cur-1000), 410}, // gone
		{"abc/parts/0", 400},
	}
	for _, tt := range tests {
		code, h, b := fetch(t, base+tt.path)
		if code != tt.code {
			t.Errorf("%s = %d, want %d (%s)", tt.path, code, tt.code, b)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", tt.path, h.Get("Cache-Control"))
		}
	}
}
