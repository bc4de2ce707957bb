package origin

import (
	"bufio"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fuzzN0 is the segment in progress when a bubble starts (2000-01-01
// 00:00:00 UTC, 10 s segments); fuzzAt is when FuzzRouter's request arrives.
const (
	fuzzN0 = 946_684_800 / 10
	fuzzAt = 1500 * time.Millisecond
)

var fuzzSegmentPath = regexp.MustCompile(`^/v1/feeds/prices/segments/([0-9]+)(?:/(parts|upto)/([0-9]+))?$`)

// mayHold reports whether a request may legitimately be held (headers not
// yet sent) at t0+fuzzAt: the next segment (early hold), or a part of the
// current segment that ends within two part lengths (blocking reload).
// Nothing else exists that a request could wait for.
func mayHold(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	m := fuzzSegmentPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return false
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	if m[2] == "" {
		return n == fuzzN0+1
	}
	k, _ := strconv.Atoi(m[3])
	return n == fuzzN0 && (k == 1 || k == 2) // part 1 ends at 2 s, part 2 at 3 s
}

// FuzzRouter sends one request of any method, target, protocol version and
// header set to the public handler, 1.5 s into a segment, and checks what
// the open internet relies on: no handler panics; every error is no-store
// (never cached at an edge); every 4xx is answered at once, never after a
// hold; a request is held only for something that will exist within the
// hold's bound (the next segment, a part about to end); and every request
// but a direct-mode stream has ended one segment after the next one starts.
func FuzzRouter(f *testing.F) {
	seg := func(n int64, rest string) string { return fmt.Sprintf("/v1/feeds/prices/segments/%d%s", n, rest) }
	for _, s := range []struct {
		method, target string
		minor          uint8
		header         string
	}{
		{"GET", "/", 1, ""},
		{"GET", "/v1/feeds", 1, ""},
		{"GET", "/v1/feeds/prices", 1, "Cookie: a=b\r\n"},
		{"GET", "/v1/feeds/prices/snapshot", 1, ""},
		{"GET", seg(fuzzN0, ""), 1, "Last-Event-ID: 5\r\n"},
		{"GET", seg(fuzzN0, ""), 0, ""},
		{"GET", seg(fuzzN0+1, ""), 1, ""},
		{"HEAD", seg(fuzzN0+1, ""), 1, ""},
		{"GET", seg(fuzzN0+2, ""), 1, ""},
		{"GET", seg(fuzzN0-1, ""), 1, ""},
		{"GET", seg(fuzzN0, "/parts/0"), 1, ""},
		{"GET", seg(fuzzN0, "/parts/1"), 1, ""},
		{"GET", seg(fuzzN0, "/upto/2"), 1, ""},
		{"GET", seg(fuzzN0, "/parts/3"), 1, ""},
		{"GET", seg(fuzzN0+1, "/parts/0"), 1, ""},
		{"GET", seg(1939342887, "/parts/5"), 1, ""},        // n·D wraps around to just before now
		{"GET", seg(5628691702, "/upto/2"), 1, ""},         // likewise
		{"GET", seg(999_999_999, "/upto/9"), 1, ""},        // 9 digits
		{"GET", seg(9_999_999_999_999, "/parts/0"), 1, ""}, // 13 digits
		{"GET", seg(999_999_999_999_999, ""), 1, ""},       // 15 digits
		{"GET", "/v1/feeds/prices/segments/9223372036854775807", 1, ""},
		{"GET", "/v1/feeds/prices/segments/%39%34668481", 1, ""}, // percent-encoded digits
		{"GET", "/v1/feeds/%70rices/segments/94668480", 1, ""},
		{"GET", "/v1/feeds//prices", 1, ""},
		{"GET", "/v1/feeds/prices/./snapshot", 1, ""},
		{"GET", "/v1/feeds/x/../prices", 1, ""},
		{"GET", "/v1/feeds/prices/", 1, ""},
		{"GET", "/V1/FEEDS/prices", 1, ""},
		{"GET", "/v1/feeds/prices/events", 1, "Last-Event-ID: 1\r\n"},
		{"GET", "/v1/client.js", 1, "Range: bytes=0-1,2-3,4-5\r\n"},
		{"GET", "/assets/dashboard.css", 1, "If-None-Match: *\r\n"},
		{"GET", "/v1/feeds", 1, "Content-Length: 5\r\n"},
		{"GET", "/v1/feeds", 1, "Transfer-Encoding: chunked\r\n"},
		{"POST", "/v1/feeds", 1, "Content-Length: 3\r\n"},
		{"OPTIONS", "/v1/feeds/prices/events", 1, "Access-Control-Request-Headers: last-event-id\r\n"},
		{"OPTIONS", "*", 1, ""},
		{"GET", "http://origin.test/v1/feeds/prices", 1, ""},
		{"CONNECT", "origin.test:443", 1, ""},
		{"GET", "/metrics", 1, ""},
		{"GET", "/healthz?x=1", 1, ""},
	} {
		f.Add(s.method, s.target, s.minor, s.header)
	}
	f.Fuzz(func(t *testing.T, method, target string, minor uint8, header string) {
		if header != "" && !strings.HasSuffix(header, "\r\n") {
			header += "\r\n"
		}
		raw := fmt.Sprintf("%s %s HTTP/1.%d\r\nHost: origin.test\r\n%s\r\n", method, target, minor%2, header)
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http refuses it before any handler
		}
		synctest.Test(t, func(t *testing.T) {
			b := newBubble(t, Defaults(), testSegmenter())
			if b.n0 != fuzzN0 {
				t.Fatalf("bubble starts in segment %d, want %d", b.n0, fuzzN0)
			}
			b.sleepUntil(fuzzAt)
			x := b.serveRequest(nil, req)
			synctest.Wait()

			code, when := x.status()
			if code == 0 && !mayHold(req) {
				t.Fatalf("%q: held, but nothing it asks for will exist", raw)
			}
			if code >= 400 && code < 500 && !when.Equal(b.at(fuzzAt)) {
				t.Fatalf("%q: %d after t0+%v, want every 4xx at once", raw, code, when.Sub(b.t0))
			}

			// The longest legitimate life: held until the next segment
			// starts (10 s), then streamed to its end (20 s).
			b.sleepUntil(21 * time.Second)
			code, _ = x.status()
			if ended, _ := x.ended(); !ended && !strings.HasSuffix(req.URL.Path, "/events") {
				t.Fatalf("%q: still running at t0+21s (status %d)", raw, code)
			}
			if _, p := x.outcome(); p != nil {
				t.Fatalf("%q: handler panicked: %v", raw, p)
			}
			if code >= 400 {
				h := x.headers()
				if h.Get("Cache-Control") != "no-store" || h.Get("CDN-Cache-Control") != "no-store" {
					t.Fatalf("%q: %d with Cache-Control %q, CDN-Cache-Control %q; want no-store", raw, code, h.Get("Cache-Control"), h.Get("CDN-Cache-Control"))
				}
			}
		})
	})
}
