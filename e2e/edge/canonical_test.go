//go:build unix

package edge_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRequest sends one request with the target exactly as given (no
// client-side cleaning or escaping) on its own connection and returns the
// response with its body, or for a stream its first event.
func rawRequest(t *testing.T, base, method, target string) (*http.Response, string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		var b strings.Builder
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\n" {
				break
			}
		}
		return resp, b.String()
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestVarnishCanonical checks that marquee.vcl keeps one spelling per
// cacheable URL. Percent-encoded digits and feed letters, either hex case,
// dot segments, double and trailing slashes and bytes a path may not
// carry unencoded are refused by the edge itself (400 no-store): no origin request, no cache
// object. Numbers with a leading zero and route words in another case are
// passed and refused or not found by the origin, never a stream. The
// canonical URL still collapses to one origin response, and neither a
// query string nor the absolute form (which Varnish turns into the path)
// makes another cache object.
//
// Both VCL files are checked: marquee-buffered.vcl includes marquee.vcl's
// vcl_recv.
func TestVarnishCanonical(t *testing.T) {
	s := startStack(t)
	for _, vcl := range []string{"marquee.vcl", "marquee-buffered.vcl"} {
		t.Run(vcl, func(t *testing.T) { checkCanonical(t, s, vcl) })
	}
}

func checkCanonical(t *testing.T, s *stack, vcl string) {
	o := s.origin
	v := StartVarnish(t, VarnishOptions{Backend: o.Addr, VCL: vcl})
	if v.Stats() == nil {
		t.Skip("varnishstat not available: cannot count cache objects")
	}
	g := o.Hub.Grid()
	// Early in a segment, so that every request below sees the same one.
	now := time.Now()
	if into := now.Sub(g.Start(g.Index(now))); into > 300*time.Millisecond {
		time.Sleep(time.Until(g.End(g.Index(now)).Add(100 * time.Millisecond)))
	}
	n := g.Index(time.Now())
	ns := strconv.FormatInt(n, 10)
	canon := "/v1/feeds/scores/segments/" + ns

	// The canonical URL collapses: three viewers, one origin response.
	before := segmentResponses(o, "scores")
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, first := rawRequest(t, v.URL, "GET", canon)
			if resp.StatusCode != 200 || !strings.Contains(first, "retry:") {
				t.Errorf("GET %s: %d %q", canon, resp.StatusCode, first)
			}
		}()
	}
	wg.Wait()
	if resp, _ := rawRequest(t, v.URL, "GET", canon+"?cb=%31"); resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("GET %s?cb=%%31: X-Cache %q, want HIT (the query string is not part of the key)", canon, resp.Header.Get("X-Cache"))
	}
	// Varnish itself turns the absolute form into the path (and Host).
	if resp, _ := rawRequest(t, v.URL, "GET", "http://edge.example"+canon); resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("GET http://edge.example%s: X-Cache %q, want HIT on the canonical object", canon, resp.Header.Get("X-Cache"))
	}
	if got := segmentResponses(o, "scores") - before; got != 1 {
		t.Fatalf("the canonical URL cost the origin %v segment responses, want 1", got)
	}

	stats := v.Stats()
	objects, backend := stats["MAIN.n_object"], stats["MAIN.backend_req"]
	requests := originRequests(o, "GET /v1/feeds/{feed}/segments/{n}") + originRequests(o, "GET /v1/feeds/{feed}/segments/{n}/parts/{k}") + originRequests(o, "unmatched")

	enc := func(c byte) string { return fmt.Sprintf("%%%02X", c) }
	refusedAtEdge := []string{
		"/v1/feeds/scores/segments/" + enc(ns[0]) + ns[1:],
		"/v1/feeds/scores/segments/" + ns[:len(ns)-1] + strings.ToLower(enc(ns[len(ns)-1])),
		"/v1/feeds/" + enc('s') + "cores/segments/" + ns,
		"/v1/feeds/s" + strings.ToLower(enc('c')) + "ores/segments/" + ns,
		"/v1/feeds/scores%2Fsegments/" + ns,
		"/v1/feeds/scores%2fsegments/" + ns,
		canon + "/parts/%30",
		"/v1/feeds/scores/segments/./" + ns,
		"/v1/feeds/scores/./segments/" + ns,
		"/v1/feeds/x/../scores/segments/" + ns,
		canon + "/.",
		canon + "/..",
		"/v1/feeds//scores/segments/" + ns,
		"//v1/feeds/scores/segments/" + ns,
		canon + "/",
		canon + "/?x=1",
		"/v1/feeds/sc\"ores/segments/" + ns,
		"/v1/feeds/sc\xc3\xb6res/segments/" + ns,
		"/v1/feeds/" + enc('s') + "cores",
		"/assets/..%2fassets.go",
		"/v1/client%2Ejs",
	}
	for _, target := range refusedAtEdge {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := rawRequest(t, v.URL, method, target)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s %q: %d, Cache-Control %q, body %q; want 400 no-store from the edge", method, target, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
			}
		}
	}
	stats = v.Stats()
	if got := stats["MAIN.backend_req"] - backend; got != 0 {
		t.Errorf("non-canonical paths made %d origin fetches, want 0", got)
	}
	if got := stats["MAIN.n_object"]; got > objects {
		t.Errorf("non-canonical paths made %d cache objects", got-objects)
	}

	// Passed to the origin, which refuses them at once; never a stream.
	passed := map[string]int{
		"/v1/feeds/scores/segments/0" + ns:              http.StatusBadRequest,
		"/v1/feeds/scores/segments/" + ns + "/parts/00": http.StatusBadRequest,
		"/v1/feeds/scores/segments/1" + ns + "0000000":  http.StatusBadRequest, // 17 digits: not a number the edge hashes
		"/V1/feeds/scores/segments/" + ns:               http.StatusNotFound,
		"/v1/FEEDS/scores/segments/" + ns:               http.StatusNotFound,
		"/v1/feeds/scores/SEGMENTS/" + ns:               http.StatusNotFound,
	}
	for target, code := range passed {
		resp, body := rawRequest(t, v.URL, "GET", target)
		if resp.StatusCode != code || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %q: %d, Cache-Control %q, body %q; want %d no-store", target, resp.StatusCode, resp.Header.Get("Cache-Control"), body, code)
		}
	}
	if got := segmentResponses(o, "scores") - before; got != 1 {
		t.Errorf("origin segment responses %v, want still 1: a variant opened a stream", got)
	}
	if got := originRequests(o, "GET /v1/feeds/{feed}/segments/{n}") + originRequests(o, "GET /v1/feeds/{feed}/segments/{n}/parts/{k}") + originRequests(o, "unmatched") - requests; got > float64(len(passed)) {
		t.Errorf("origin saw %v requests for %d passed variants", got, len(passed))
	}
	if got := v.Stats()["MAIN.n_object"]; got > objects {
		t.Errorf("passed variants left %d cache objects", got-objects)
	}
	v.LogStats()
}
