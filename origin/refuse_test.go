package origin

import (
	"bufio"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// wrappingPart returns a segment number n above now's and a part k for
// which the unchecked arithmetic of old, n·D in int64 nanoseconds, wraps
// around to a part that ends within two part lengths of now: the request
// an attacker found that is held for a segment that never opens.
func wrappingPart(t *testing.T, now time.Time, d, p time.Duration, j int64) (int64, int) {
	t.Helper()
	target := big.NewInt(now.Add(-d + p).UnixNano())
	target.Add(target, new(big.Int).Lsh(big.NewInt(j), 64))
	n := new(big.Int).Div(target, big.NewInt(d.Nanoseconds()))
	n.Add(n, big.NewInt(1))
	wrapped := time.Unix(0, n.Int64()*d.Nanoseconds()) // wraps on purpose
	for k := 0; k < int(d/p); k++ {
		if end := wrapped.Add(time.Duration(k+1) * p); end.After(now) && !end.After(now.Add(2*p)) {
			return n.Int64(), k
		}
	}
	t.Fatalf("no wrapping part for j=%d", j)
	return 0, 0
}

// TestSegmentNumbersOutsideWindow: segment numbers beyond the next
// segment, from ten digits up to the fifteen parseIndex allows, are 404
// no-store at once in every handler, never held and never a stream,
// including those whose start computed without a check would wrap around
// to a time near now; a number below retention is 410.
func TestSegmentNumbersOutsideWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(fuzzAt)
		g := b.hub.Grid()
		var paths []string
		for j := int64(1); j <= 200_000; j *= 7 {
			n, k := wrappingPart(t, time.Now(), g.Segment, g.Part, j)
			paths = append(paths, b.segPath(n-b.n0, "/parts/", strconv.Itoa(k)), b.segPath(n-b.n0, "/upto/", strconv.Itoa(k)))
		}
		for _, n := range []int64{b.n0 + 2, 300_000_000, 922_337_204, 999_999_999, 9_999_999_999_999, 999_999_999_999_999} {
			for _, rest := range []string{"", "/parts/0", "/upto/9"} {
				paths = append(paths, fmt.Sprintf("/v1/feeds/prices/segments/%d%s", n, rest))
			}
		}
		for _, p := range paths {
			x := b.get(p)
			b.want(x, p, http.StatusNotFound, fuzzAt)
			b.wantEnded(x, p, fuzzAt)
			if got := x.head("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q", p, got)
			}
		}
		if got, want := counter(b.s.m.refused.WithLabelValues(refusedWindow)), float64(len(paths)); got != want {
			t.Errorf("refused{window} = %v, want %v", got, want)
		}
		for _, mode := range []string{modeStream, modePart} {
			if got := counter(b.s.m.streamClosed.WithLabelValues(mode, reasonRefused)); got != 0 {
				t.Errorf("%s: %v refused streams; a refusal outside the window must not take a stream slot", mode, got)
			}
		}
		for _, rest := range []string{"", "/parts/0"} {
			x := b.get(b.segPath(-3, rest))
			b.want(x, "segment before retention"+rest, http.StatusGone, fuzzAt)
		}
	})
}

// TestHTTP10Stream: over HTTP/1.0, which cannot tell a cut response from a
// whole one, an open or future segment is refused at once (400 no-store);
// a finished segment is served whole with its Content-Length, and parts
// (complete responses) as usual.
func TestHTTP10Stream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		get10 := func(path string) *exchange {
			req := httptest.NewRequest(http.MethodGet, "http://origin.test"+path, nil)
			req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
			x := b.serveRequest(nil, req)
			synctest.Wait()
			return x
		}
		b.sleepUntil(fuzzAt)
		for _, i := range []int64{0, 1} {
			x := get10(b.segPath(i))
			b.want(x, fmt.Sprintf("HTTP/1.0 segment n0+%d", i), http.StatusBadRequest, fuzzAt)
			if !strings.Contains(x.body(), "HTTP/1.1") || x.head("Cache-Control") != "no-store" {
				t.Errorf("HTTP/1.0 refusal: %q, Cache-Control %q", x.body(), x.head("Cache-Control"))
			}
		}
		if got := counter(b.s.m.refused.WithLabelValues(refusedProtocol)); got != 2 {
			t.Errorf("refused{protocol} = %v, want 2", got)
		}
		part := get10(b.segPath(0, "/parts/0"))
		b.want(part, "HTTP/1.0 finished part", http.StatusOK, fuzzAt)

		b.sleepUntil(11 * time.Second)
		x := get10(b.segPath(0))
		b.want(x, "HTTP/1.0 finished segment", http.StatusOK, 11*time.Second)
		b.wantEnded(x, "HTTP/1.0 finished segment", 11*time.Second)
		if got, want := x.head("Content-Length"), strconv.Itoa(len(x.body())); got != want || !strings.Contains(x.body(), "event: next") {
			t.Errorf("HTTP/1.0 finished segment: Content-Length %s, body %d bytes %q", got, len(x.body()), tail(x.body()))
		}
	})
}

// TestNonCanonicalPaths: a path spelt in any but the one way marquee
// spells it (percent-encoding, empty, "." and ".." segments) is 400
// no-store for every method, counted; canonical spellings reach the routes
// (a route word in another case is no route: 404).
func TestNonCanonicalPaths(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, Defaults(), testSegmenter())
		b.sleepUntil(fuzzAt)
		n := strconv.FormatInt(b.n0, 10)
		bad := []string{
			"/v1/feeds/prices/segments/%3" + n[:1] + n[1:],
			"/v1/feeds/prices/segments/" + n + "/parts/%30",
			"/v1/feeds/%70rices/segments/" + n,
			"/v1/feeds/%70RICES",
			"/v1/feeds/prices%2Fsnapshot",
			"/v1/feeds/prices%2fsnapshot",
			"/v1/feeds/prices/",
			"/v1/feeds//prices",
			"//v1/feeds/prices",
			"/v1/feeds/prices/./snapshot",
			"/v1/feeds/prices/snapshot/.",
			"/v1/feeds/x/../prices",
			"/v1/feeds/prices/segments/" + n + "/..",
			"/assets/..%2fassets.go",
			"/assets/",
			"/%761/client.js",
			"/v1/feeds/pr\u00e9ces",
			"/v1/feeds/pr%C3%A9ces",
		}
		for _, p := range bad {
			for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost} {
				x := b.do(method, p)
				synctest.Wait()
				b.want(x, method+" "+p, http.StatusBadRequest, fuzzAt)
				if got := x.head("Cache-Control"); got != "no-store" {
					t.Errorf("%s %s: Cache-Control %q", method, p, got)
				}
			}
		}
		if got, want := counter(b.s.m.refused.WithLabelValues(refusedPath)), float64(4*len(bad)); got != want {
			t.Errorf("refused{path} = %v, want %v", got, want)
		}
		for p, code := range map[string]int{
			"/":                               http.StatusOK,
			"/v1/feeds/prices":                http.StatusOK,
			"/v1/feeds/prices/snapshot":       http.StatusOK,
			b.segPath(0, "/parts/0"):          http.StatusOK,
			"/V1/feeds/prices":                http.StatusNotFound,
			"/v1/feeds/Prices":                http.StatusNotFound,
			"/v1/feeds/prices/segments/0" + n: http.StatusBadRequest, // leading zero: parseIndex
		} {
			x := b.get(p)
			b.want(x, p, code, fuzzAt)
		}
	})
}

// rawExchange sends raw on a new connection to addr and returns the
// response and a reader for the rest of the connection.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return resp, c, br
}

// TestBodyRefused: a GET, HEAD or OPTIONS request that announces a body
// is answered 400 no-store at once, before the body is even sent, and its
// connection is closed soon after, with the body unread; a declared
// Content-Length of 0 is no body.
func TestBodyRefused(t *testing.T) {
	s, _, ts, _ := newTestServer(t, Defaults())
	addr := strings.TrimPrefix(ts.URL, "http://")
	for _, tc := range []struct{ name, head string }{
		{"small Content-Length", "GET /v1/feeds HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"},
		{"large Content-Length", "GET /v1/feeds/prices/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"},
		{"chunked", "GET /v1/feeds/prices/segments/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"HEAD", "HEAD /v1/client.js HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"},
		{"OPTIONS", "OPTIONS /v1/feeds HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, _, br := rawExchange(t, addr, tc.head) // no body follows
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Cache-Control") != "no-store" || !resp.Close {
				t.Errorf("%d, Cache-Control %q, close %v; want 400 no-store and the connection closed", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Close)
			}
			io.Copy(io.Discard, resp.Body)
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
				t.Errorf("after the response: %q, %v; want the connection closed", rest, err)
			}
			if d := time.Since(start); d > bodyDrainTimeout+2*time.Second {
				t.Errorf("connection closed after %v, want within the drain timeout %v", d, bodyDrainTimeout)
			}
		})
	}
	if got := counter(s.m.refused.WithLabelValues(refusedBody)); got != 5 {
		t.Errorf("refused{body} = %v, want 5", got)
	}
	resp, _, _ := rawExchange(t, addr, "GET /v1/feeds HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("Content-Length: 0: %d, want 200", resp.StatusCode)
	}
}

// TestResponseIDs: response ids are random, not a process prefix and a
// counter: distinct, of one format, with nothing in common.
func TestResponseIDs(t *testing.T) {
	s, _, _, _ := newTestServer(t, Defaults())
	format := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	seen := map[string]bool{}
	first := map[byte]bool{}
	for range 1000 {
		id := s.responseID()
		if !format.MatchString(id) || seen[id] {
			t.Fatalf("response id %q: want 26 base32 characters, unique", id)
		}
		seen[id] = true
		first[id[0]] = true
	}
	if len(first) < 10 {
		t.Errorf("1000 ids start with only %d distinct characters: not random", len(first))
	}
}

// FuzzCanonicalPath: CanonicalPath agrees with what the origin does with
// the path as sent (refused 400 exactly when it is not canonical), and a
// canonical path is its own escaped form: parsing it changes nothing.
func FuzzCanonicalPath(f *testing.F) {
	for _, p := range []string{"/", "/v1/feeds/prices/segments/1", "/v1/feeds/%70rices", "/a//b", "/a/./b", "/a/", "/a!$&'()*+,;=:@b", "/a\"b", "/é", "*"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if strings.ContainsAny(p, "?#") {
			return // a query is no part of the path
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return
		}
		ok := CanonicalPath(p)
		if req.URL.Host == "" && canonicalPath(req) != ok {
			t.Fatalf("%q: CanonicalPath %v, but the request's path %q (escaped %q) is judged %v", p, ok, req.URL.Path, req.URL.EscapedPath(), !ok)
		}
		if ok && (req.URL.Path != p || req.URL.EscapedPath() != p) {
			t.Fatalf("%q is canonical but parses to %q (escaped %q)", p, req.URL.Path, req.URL.EscapedPath())
		}
	})
}
