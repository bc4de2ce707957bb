//go:build unix

package edge_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"marquee/internal/testenv"
)

// tokenRefused is the origin's count of token refusals for reason.
func tokenRefused(o *testenv.Origin, reason string) float64 {
	return o.Metric("marquee_token_refused_total", map[string]string{"reason": reason})
}

// TestEdgeTokenCollapse: a protected feed behind Varnish. 500 viewers
// holding the same window's token, joining at random moments (early and
// held, or late into the live segment), cost the origin one response per
// segment, and all get the same bytes. A missing, forged, expired or other
// feed's token is refused 403 no-store by the origin on every request and
// never cached by the edge.
func TestEdgeTokenCollapse(t *testing.T) {
	const viewers = 500
	// 10-segment (30 s) windows; "scores" is protected, "prices" public.
	s := startStackWith(t, testenv.Options{Config: testenv.Protect(0, "scores")})
	o := s.origin
	v := StartVarnish(t, VarnishOptions{Backend: o.Addr, Threads: viewers + 100})
	g := o.Hub.Grid()
	keys := o.Server.Tokens()

	// Two whole segments inside one token window, so that the run's token
	// serves both without relying on the overlap.
	for {
		cur := g.Index(time.Now())
		if w := cur % 10; w <= 6 && time.Until(g.End(cur)) > 500*time.Millisecond {
			break
		}
		time.Sleep(time.Until(g.End(cur)) + 10*time.Millisecond)
	}
	tok := o.Token("scores")
	first := g.Index(time.Now()) + 1
	segs := []int64{first, first + 1}
	path := func(n int64) string { return fmt.Sprintf("/v1/feeds/scores/t/%s/segments/%d", tok, n) }
	before := segmentResponses(o, "scores")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Viewers join over [now, start of the first segment + 1 s): most are
	// held early, the rest join it live; each then follows to the next.
	spread := time.Until(g.Start(first).Add(time.Second))
	var (
		mu     sync.Mutex
		sums   = map[int64]map[[32]byte]int{}
		hits   int
		errs   []error
		wg     sync.WaitGroup
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: viewers, DisableCompression: true}}
	)
	for _, n := range segs {
		sums[n] = map[[32]byte]int{}
	}
	for i := range viewers {
		wait := time.Duration(rand.Int64N(int64(spread)))
		wg.Go(func() {
			time.Sleep(wait)
			for _, n := range segs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.URL+path(n), nil)
				if i%3 == 0 { // what browsers add must not split the cache
					req.Header.Set("Cookie", fmt.Sprintf("session=%d", i))
					req.URL.RawQuery = fmt.Sprintf("cb=%d", i)
				}
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("viewer %d segment %d: %w", i, n, err))
				case resp.StatusCode != 200:
					errs = append(errs, fmt.Errorf("viewer %d segment %d: %d %s", i, n, resp.StatusCode, body))
				default:
					sums[n][sha256.Sum256(body)]++
					if resp.Header.Get("X-Cache") == "HIT" {
						hits++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i < 5 {
			t.Error(err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d viewer errors", len(errs))
	}
	after := segmentResponses(o, "scores")
	if got, want := after-before, float64(len(segs)); got != want {
		t.Errorf("origin started %v segment responses for %d viewers of %d tokened segments, want %v (one per segment)", got, viewers, len(segs), want)
	}
	for _, n := range segs {
		if len(sums[n]) != 1 {
			t.Errorf("segment %d: %d different bodies among %d viewers", n, len(sums[n]), viewers)
		}
	}
	t.Logf("%d viewers × %d tokened segments: %v origin segment responses, %d edge hits", viewers, len(segs), after-before, hits)

	// Refused tokens: each request reaches the origin, is 403 no-store,
	// and the second is no hit.
	cur := g.Index(time.Now())
	expired, err := keys.Mint("scores", time.Now().Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	forged := tok[:len(tok)-3] + "AAA"
	if forged == tok {
		forged = tok[:len(tok)-3] + "BBB"
	}
	for _, c := range []struct {
		name, path, reason string
	}{
		{"no token", fmt.Sprintf("/v1/feeds/scores/segments/%d", cur), "missing"},
		{"forged", fmt.Sprintf("/v1/feeds/scores/t/%s/segments/%d", forged, cur), "bad_mac"},
		{"expired", fmt.Sprintf("/v1/feeds/scores/t/%s/segments/%d", expired.Value, cur), "expired"},
		{"other feed's", fmt.Sprintf("/v1/feeds/scores/t/%s/segments/%d", o.Token("prices"), cur), "bad_mac"},
		{"forged descriptor", "/v1/feeds/scores/t/" + forged, "bad_mac"},
		{"public feed", fmt.Sprintf("/v1/feeds/prices/t/%s/segments/%d", o.Token("prices"), cur), "public_feed"},
	} {
		refusedBefore := tokenRefused(o, c.reason)
		for i := range 2 {
			resp, body := fetch(t, v.URL+c.path, nil)
			want := http.StatusForbidden
			if c.reason == "public_feed" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s, request %d: %d, Cache-Control %q: %s", c.name, i, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
			}
			if i == 1 && resp.Header.Get("X-Cache") == "HIT" {
				t.Errorf("%s: the refusal was cached at the edge", c.name)
			}
		}
		if got := tokenRefused(o, c.reason) - refusedBefore; got != 2 {
			t.Errorf("%s: the origin refused %v of 2 requests (reason %s)", c.name, got, c.reason)
		}
	}
	// The good token is still served (and was not displaced).
	if resp, _ := fetch(t, v.URL+"/v1/feeds/scores/t/"+tok, nil); resp.StatusCode != 200 {
		t.Errorf("tokened descriptor: %d", resp.StatusCode)
	}
}
