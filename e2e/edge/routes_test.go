//go:build unix

package edge_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"marquee/cdn"
	"marquee/internal/testenv"
)

// originRequests is the origin's count of requests for route (a ServeMux
// pattern), all status classes.
func originRequests(o *testenv.Origin, route string) float64 {
	var n float64
	for _, c := range []string{"2xx", "3xx", "4xx", "5xx"} {
		n += o.Metric("marquee_http_requests_total", map[string]string{"route": route, "code": c})
	}
	return n
}

func fetch(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestVarnishRoutes checks marquee.vcl route by route: errors are never
// cached, direct mode and health are passed, descriptors are cached for
// their short TTL under their path alone.
func TestVarnishRoutes(t *testing.T) {
	s := startStack(t)
	o := s.origin
	v := StartVarnish(t, VarnishOptions{Backend: o.Addr})
	g := o.Hub.Grid()

	t.Run("errors are not cached", func(t *testing.T) {
		const route = "GET /v1/feeds/{feed}/segments/{n}"
		url := fmt.Sprintf("%s/v1/feeds/scores/segments/%d", v.URL, g.Index(time.Now())+20) // not started: 404
		before := originRequests(o, route)
		for i := range 2 {
			resp, _ := fetch(t, url, nil)
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("request %d: %d, Cache-Control %q", i, resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			time.Sleep(1100 * time.Millisecond) // past the 1 s hit-for-miss
		}
		if got := originRequests(o, route) - before; got != 2 {
			t.Errorf("origin saw %v requests for two 404s, want 2 (an error was cached)", got)
		}
		resp, body := fetch(t, v.URL+"/v1/feeds/nosuchfeed?x=1", map[string]string{"Cookie": "a=b"})
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "unknown feed") {
			t.Errorf("unknown feed: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("direct mode is passed", func(t *testing.T) {
		ids := map[string]bool{}
		for range 2 {
			req, _ := http.NewRequest("GET", v.URL+"/v1/feeds/scores/events", nil)
			req.Header.Set("Last-Event-ID", "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, _ := resp.Body.Read(buf) // something streams at once
			resp.Body.Close()
			if resp.StatusCode != 200 || n == 0 || resp.Header.Get("X-Cache") != "PASS" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("direct: %d, %d bytes, X-Cache %q, Cache-Control %q", resp.StatusCode, n, resp.Header.Get("X-Cache"), resp.Header.Get("Cache-Control"))
			}
			ids[resp.Header.Get("Marquee-Response-Id")] = true
		}
		if len(ids) != 2 {
			t.Errorf("two direct streams shared a response id: %v", ids)
		}
	})

	t.Run("health is passed", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			const n = 3
			route := "GET " + p
			before := originRequests(o, route)
			for range n {
				if resp, _ := fetch(t, v.URL+p, nil); resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "PASS" {
					t.Errorf("%s: %d X-Cache %q", p, resp.StatusCode, resp.Header.Get("X-Cache"))
				}
			}
			// The edge's own health probe may add requests to /readyz.
			if got := originRequests(o, route) - before; got < n {
				t.Errorf("%s: origin saw %v of %d requests", p, got, n)
			}
		}
	})

	t.Run("descriptor cached on its path", func(t *testing.T) {
		const route = "GET /v1/feeds/{feed}"
		// Start right after a segment boundary: the origin cuts the TTL so
		// that it never crosses one, and max-age=1 must not run out between
		// the requests.
		time.Sleep(time.Until(g.End(g.Index(time.Now())).Add(20 * time.Millisecond)))
		before := originRequests(o, route)
		var first string
		for i, hdr := range []map[string]string{nil, {"Cookie": "s=1"}, {"Cache-Control": "no-cache"}} {
			url := v.URL + "/v1/feeds/scores"
			if i == 2 {
				url += "?cb=3"
			}
			resp, body := fetch(t, url, hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("descriptor: %d", resp.StatusCode)
			}
			if i == 0 {
				first = body
			} else if body != first {
				t.Errorf("request %d got a different descriptor", i)
			}
		}
		if got := originRequests(o, route) - before; got > 1 {
			t.Errorf("origin saw %v descriptor requests for three within its TTL", got)
		}
	})
}

// TestVarnishRouteTable checks marquee.vcl against cdn's route table: every
// route of the public and admin listeners is treated as its edge class says
// (segment, short and static routes cached under their path, pass routes
// passed, deny routes refused at the edge), and streams are never
// compressed.
func TestVarnishRouteTable(t *testing.T) {
	// The tokened routes are those of a protected feed: prices.
	s := startStackWith(t, testenv.Options{Config: testenv.Protect(0, "prices")})
	o := s.origin
	v := StartVarnish(t, VarnishOptions{Backend: o.Addr})
	g := o.Hub.Grid()
	// In a segment the origin opened by rotation (one it opened at start-up,
	// mid-segment, refuses parts before its first complete one), between
	// 1.2 s and 1.5 s into it: part 0 is finished and the descriptor's
	// max-age of 1 s does not reach the segment end.
	started := g.Index(time.Now())
	now := time.Now()
	if into := now.Sub(g.Start(g.Index(now))); into > 1500*time.Millisecond || g.Index(now) == started {
		time.Sleep(time.Until(g.End(g.Index(now)).Add(1200 * time.Millisecond)))
	} else if into < 1200*time.Millisecond {
		time.Sleep(1200*time.Millisecond - into)
	}
	n := g.Index(time.Now())
	tok := o.Token("prices")
	path := func(pattern string) string {
		feed := "scores"
		if strings.Contains(pattern, "{token}") {
			feed = "prices"
		}
		return strings.NewReplacer("{$}", "", "{feed}", feed, "{token}", tok, "{n}", strconv.FormatInt(n, 10), "{k}", "0", "{file}", "dashboard.css").Replace(pattern)
	}
	// get requests p like a browser would and reads the body, or for a
	// stream its first event.
	get := func(t *testing.T, p string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", v.URL+p+"?cb=1", nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		req.Header.Set("Cookie", "session=x")
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") == "text/event-stream" {
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\n" {
					break
				}
			}
		} else {
			io.Copy(io.Discard, resp.Body)
		}
		return resp
	}
	routes := append(slices.Clone(cdn.PublicRoutes), cdn.AdminRoutes...)
	for _, r := range routes {
		t.Run(string(r.Edge)+" "+r.Pattern, func(t *testing.T) {
			p := path(r.Pattern)
			switch r.Edge {
			case cdn.EdgeDeny:
				before := originRequests(o, "unmatched")
				resp := get(t, p)
				if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: %d, Cache-Control %q; want 404 no-store from the edge", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
				}
				if got := originRequests(o, "unmatched") - before; got != 0 {
					t.Errorf("%s reached the origin", p)
				}
			case cdn.EdgePass:
				for i := range 2 {
					resp := get(t, p)
					if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "PASS" {
						t.Errorf("%s request %d: %d, X-Cache %q; want 200 PASS", p, i, resp.StatusCode, resp.Header.Get("X-Cache"))
					}
				}
			default:
				a, b := get(t, p), get(t, p)
				if a.StatusCode != 200 || b.StatusCode != 200 {
					t.Fatalf("%s: %d, %d", p, a.StatusCode, b.StatusCode)
				}
				if got := b.Header.Get("X-Cache"); got != "HIT" {
					t.Errorf("%s: second request X-Cache %q, want HIT (Cache-Control %q)", p, got, a.Header.Get("Cache-Control"))
				}
				if id := a.Header.Get(cdn.HeaderResponseID); id != b.Header.Get(cdn.HeaderResponseID) {
					t.Errorf("%s: response ids %q and %q", p, id, b.Header.Get(cdn.HeaderResponseID))
				}
				if r.Stream && (b.Header.Get("Content-Encoding") != "" || b.Header.Get("Set-Cookie") != "") {
					t.Errorf("%s: Content-Encoding %q, Set-Cookie %q", p, b.Header.Get("Content-Encoding"), b.Header.Get("Set-Cookie"))
				}
			}
		})
	}
}
