package browser_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/internal/app"
	"marquee/internal/testenv"
	"marquee/origin"
	"marquee/token"
	"marquee/wire"
)

// tokenServer is the operator's own endpoint that hands its users tokens:
// GET /token?feed=NAME answers what `marquee token` prints, minted with
// the origin's keyring (package token), for a page of pageOrigin, with its
// credentials (CORS with credentials: the exact origin, never "*").
type tokenServer struct {
	*httptest.Server
	// spoil is how many of the next tokens to hand out with a wrong mac
	// (-1: all).
	spoil  atomic.Int64
	mu     sync.Mutex          // guards the fields below
	minted map[string][]string // feed -> tokens handed out, in order
	// rotate, when set, mints with the listed keys in turn (a rotation in
	// progress: both validate at the origin).
	rotate []string
}

func startTokenServer(t *testing.T, keys func() *token.Keyring, pageOrigin string) *tokenServer {
	t.Helper()
	ts := &tokenServer{minted: map[string][]string{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", pageOrigin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Cache-Control", "no-store")
		feed := r.URL.Query().Get("feed")
		tok, err := keys().Mint(feed, time.Now())
		ts.mu.Lock()
		if ts.rotate != nil {
			tok, err = keys().MintWithKey(feed, ts.rotate[len(ts.minted[feed])%len(ts.rotate)], time.Now())
		}
		ts.mu.Unlock()
		if r.URL.Path != "/token" || err != nil {
			http.Error(w, fmt.Sprint("no token: ", err), http.StatusBadRequest)
			return
		}
		if n := ts.spoil.Load(); n != 0 {
			ts.spoil.CompareAndSwap(n, max(n-1, -1))
			last := "A"
			if strings.HasSuffix(tok.Value[:len(tok.Value)-5], "A") {
				last = "B"
			}
			tok.Value = tok.Value[:len(tok.Value)-6] + last + tok.Value[len(tok.Value)-5:]
		}
		ts.mu.Lock()
		ts.minted[feed] = append(ts.minted[feed], tok.Value)
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"token":          tok.Value,
			"feed":           tok.Feed,
			"key_id":         tok.KeyID,
			"window_start":   tok.Start.UTC().Format(time.RFC3339),
			"expires":        tok.Expires.UTC().Format(time.RFC3339),
			"descriptor_url": "/v1/feeds/" + feed + "/t/" + tok.Value,
		})
	}))
	t.Cleanup(ts.Close)
	return ts
}

// handedOut returns the tokens handed out for feed.
func (ts *tokenServer) handedOut(feed string) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.minted[feed])
}

// tokenInURL matches a URL of a tokened route and captures the token.
var tokenInURL = regexp.MustCompile(`/v1/feeds/prices/t/([^/]+)(/|$)`)

// TestDashboardProtectedFeed: an origin with 2 s segments whose feed
// "prices" is protected (windows of 3 segments, overlapping by two) and
// "scores" public; the dashboard gets prices' tokens from the operator's
// endpoint (?token_url=, another origin the page allows) and follows both
// feeds across at least three window boundaries, in stream, parts and
// direct mode (where the client moves to a new stream with each new token,
// before the origin ends the old one at its token's expiry).
// Every update arrives exactly once (as in TestDashboardFollowsSegments);
// the page never leaves live; every request for prices carries a token and
// the page used at least three of them (it renewed across windows); the
// origin refused nothing (marquee_token_refused_total stays 0 for every
// reason: no request without a token, with an expired one or another
// feed's); tokens of both listed keys work (the endpoint mints with them in
// turn, as during a key rotation); and the page fetched a token about once
// per window, not in a loop.
func TestDashboardProtectedFeed(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser") // before starting anything
	for _, mode := range []string{"stream", "parts", "direct"} {
		t.Run(mode, func(t *testing.T) { followProtected(t, mode) })
	}
}

// startProtected starts an origin on addr with segments of seg (parts of
// 1 s) whose feed prices is protected (windows of 3 segments, valid two
// segments past their end: a renewal on a loaded machine may be seconds
// late, where the defaults leave a whole segment of a minute), recommending
// mode to clients (""; the default) and allowing the dashboard the other
// origins, and a publisher of both demo feeds, an update every 20 ms.
// The protected feed's token window and overlap, in segments.
const protectWindow, protectOverlap = 3, 2

func startProtected(t *testing.T, n *testenv.NATS, addr string, seg time.Duration, mode string, origins ...string) (*testenv.Origin, *publisher) {
	t.Helper()
	cfg := origin.Defaults()
	cfg.DrainDelay, cfg.DrainSpread = 0, 100*time.Millisecond
	if mode != "" {
		cfg.ClientMode = mode
	}
	cfg.DashboardOrigins = origins
	o := testenv.StartOrigin(t, n, testenv.Options{
		SegmentLength: seg, PartLength: time.Second, Addr: addr, Origin: &cfg,
		Config: func(c *app.Config) {
			testenv.Protect(protectWindow, "prices")(c)
			c.Origin.Tokens.Overlap = protectOverlap * seg
		},
	})
	return o, startFeeds(t, n, o)
}

func followProtected(t *testing.T, mode string) {
	const seg = 2 * time.Second
	n := testenv.StartNATS(t)
	addr := freeAddr(t)
	var keyring atomic.Pointer[token.Keyring] // the origin's, once it runs
	ts := startTokenServer(t, keyring.Load, "http://"+addr)
	ts.mu.Lock()
	ts.rotate = []string{"k1", "k0"} // testenv.TokenKeys
	ts.mu.Unlock()
	o, pub := startProtected(t, n, addr, seg, mode, ts.URL)
	keys := o.Server.Tokens()
	keyring.Store(keys)
	window := protectWindow * seg
	if got := keys.Window() + keys.Overlap(); got != window+protectOverlap*seg {
		t.Fatalf("window + overlap %s, want %d segments + %d", got, protectWindow, protectOverlap)
	}

	b := startBrowser(t)
	b.open(o.URL + "/?token_url=" + url.QueryEscape(ts.URL+"/token"))
	var tokenURL string
	b.eval(`window.__marquee.tokenURL`, &tokenURL)
	if tokenURL != ts.URL+"/token" {
		t.Fatalf("page token URL %q, want the allowed ?token_url= %s", tokenURL, ts.URL+"/token")
	}

	// Three window boundaries (a window is 6 s): snapshots of 10 segments.
	start := time.Now()
	testenv.Eventually(t, 90*time.Second, func() error {
		page, err := b.feeds()
		if err != nil {
			return err
		}
		if mode == "direct" { // one stream per token: a snapshot when it opens
			if n := len(ts.handedOut("prices")); n < 4 || page["prices"].Status != "live" {
				return fmt.Errorf("prices: %d tokens so far, want 4 (three windows)", n)
			}
			return nil
		}
		for _, f := range feedNames {
			if n := distinct(page[f].Segments); n < 3*protectWindow+1 {
				return fmt.Errorf("%s: snapshots of %d segments so far, want %d", f, n, 3*protectWindow+1)
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	pub.halt()
	page := waitConvergedProtected(t, b, o, "prices")

	for _, f := range feedNames {
		p := page[f]
		checkFollowedLive(t, f, pub.published(f), p, mode, "at window boundaries")
		if p.Gaps != 0 {
			t.Errorf("%s: %d gaps", f, p.Gaps)
		}
	}

	for _, reason := range append(slices.Clone(token.Reasons), "public_feed") {
		if got := o.Metric("marquee_token_refused_total", map[string]string{"reason": reason}); got != 0 {
			t.Errorf("marquee_token_refused_total{reason=%q} = %v, want 0", reason, got)
		}
	}

	// Every request of the page for prices carried a token; it used at
	// least three (windows), each one the endpoint handed out.
	var urls []string
	for _, f := range b.fetchRequests() {
		urls = append(urls, f.URL)
	}
	urls = append(urls, b.eventSources()...)
	used := map[string]bool{}
	handed := ts.handedOut("prices")
	for _, u := range urls {
		if !strings.Contains(u, "/v1/feeds/prices") {
			continue
		}
		m := tokenInURL.FindStringSubmatch(u)
		if m == nil {
			t.Errorf("request without a token for the protected feed: %s", u)
			continue
		}
		used[m[1]] = true
		if !slices.Contains(handed, m[1]) {
			t.Errorf("request with a token the endpoint never handed out: %s", u)
		}
	}
	for _, u := range urls {
		if strings.Contains(u, "/v1/feeds/scores/t/") {
			t.Errorf("request with a token for the public feed: %s", u)
		}
	}
	kids := map[string]bool{}
	for v := range used {
		kids[v[:strings.IndexByte(v, '.')]] = true
	}
	if !kids["k1"] || !kids["k0"] {
		t.Errorf("tokens of keys %v used, want both k1 (minting) and k0 (still listed)", kids)
	}
	if len(used) < 3 {
		t.Errorf("the page used %d tokens for prices in %s (%d window boundaries), want at least 3", len(used), elapsed.Round(time.Second), int(elapsed/window))
	}
	// About one fetch per window, plus the first and a few early ones
	// (asked before the new window started): no loop.
	windows := int(time.Since(start)/window) + 2
	if got := len(handed); got > 2*windows+2 {
		t.Errorf("the page fetched %d tokens in about %d windows, want about one per window", got, windows)
	}
	if got := len(ts.handedOut("scores")); got != 0 {
		t.Errorf("the page fetched %d tokens for the public feed", got)
	}
	t.Logf("prices: %d tokens handed out, %d distinct used, in %s", len(handed), len(used), elapsed.Round(time.Second))
	checkDOM(t, b, page)
}

// waitConvergedProtected is waitConverged for an origin whose feed
// protected needs a token: its snapshot is read on the tokened path.
func waitConvergedProtected(t *testing.T, b *browser, o *testenv.Origin, protected string) map[string]pageFeed {
	t.Helper()
	var page map[string]pageFeed
	testenv.Eventually(t, 30*time.Second, func() error {
		var err error
		if page, err = b.feeds(); err != nil {
			return err
		}
		for _, f := range feedNames {
			path := "/v1/feeds/" + f + "/snapshot"
			if f == protected {
				path = "/v1/feeds/" + f + "/t/" + o.Token(f) + "/snapshot"
			}
			var snap wire.Snapshot
			testenv.GetJSON(t, o.URL+path, &snap)
			if err := stateDiff(page[f], snap); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		return nil
	})
	return page
}

// TestClientTokenRefused: a page whose first token is refused (403) fetches
// a new one at once and goes live without showing a reconnect; a page
// whose tokens are all refused reports reconnecting and backs off (a few
// token fetches in a dozen seconds, not a loop), and goes live once the
// endpoint hands out good tokens again.
func TestClientTokenRefused(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	n := testenv.StartNATS(t)
	addr := freeAddr(t)
	var keyring atomic.Pointer[token.Keyring]
	ts := startTokenServer(t, keyring.Load, "http://"+addr)
	cfg := origin.Defaults()
	cfg.DrainDelay, cfg.DrainSpread = 0, 100*time.Millisecond
	cfg.DashboardOrigins = []string{ts.URL}
	o := testenv.StartOrigin(t, n, testenv.Options{Addr: addr, Origin: &cfg, Config: testenv.Protect(0, "prices")})
	keyring.Store(o.Server.Tokens())
	pub := newPublisher(t, n)
	pub.waitStream()
	pub.initial()
	testenv.Eventually(t, 20*time.Second, func() error {
		if _, ok := o.Hub.Feed("prices"); !ok {
			return fmt.Errorf("feed prices not there")
		}
		return nil
	})
	badMAC := func() float64 {
		return o.Metric("marquee_token_refused_total", map[string]string{"reason": token.ReasonBadMAC})
	}
	live := func(b *browser) func() error {
		return func() error {
			p, err := b.feeds()
			if err != nil {
				return err
			}
			if s := p["prices"].Status; s != "live" {
				return fmt.Errorf("prices: status %q", s)
			}
			return nil
		}
	}

	// One bad token: renewed at once.
	ts.spoil.Store(1)
	b := startBrowser(t)
	b.open(o.URL + "/?token_url=" + url.QueryEscape(ts.URL+"/token"))
	testenv.Eventually(t, 20*time.Second, live(b))
	if got := badMAC(); got != 1 {
		t.Errorf("bad_mac refusals %v, want 1 (the first token)", got)
	}
	if got := len(ts.handedOut("prices")); got != 2 {
		t.Errorf("%d tokens fetched, want 2 (the refused one, and one more at once)", got)
	}
	if p := b.mustFeeds()["prices"]; !slices.Equal(p.Statuses, []string{"catching-up", "live"}) {
		t.Errorf("statuses %v, want catching-up, live: one refusal is renewed without a reconnect", p.Statuses)
	}

	// Every token bad: an error status, backed off.
	ts.spoil.Store(-1)
	before, refusedBefore := len(ts.handedOut("prices")), badMAC()
	b.open(o.URL + "/?token_url=" + url.QueryEscape(ts.URL+"/token"))
	const watch = 12 * time.Second
	time.Sleep(watch)
	p := b.mustFeeds()["prices"]
	if p.Status == "live" || !slices.Contains(p.Statuses, "reconnecting") {
		t.Errorf("all tokens refused: status %q (statuses %v), want reconnecting", p.Status, p.Statuses)
	}
	// Back-off from 0.25–0.5 s, doubling: at most 7 attempts in 12 s, two
	// token fetches each (one renewal after a refusal), and one more from
	// the page before (a loop would make hundreds).
	fetched, refused := len(ts.handedOut("prices"))-before, badMAC()-refusedBefore
	t.Logf("all tokens refused: %d token fetches and %v refusals in %s; statuses %v", fetched, refused, watch, p.Statuses)
	if fetched > 15 || refused > 14 {
		t.Errorf("%d token fetches, %v refusals in %s: not backed off", fetched, refused, watch)
	}
	if fetched < 2 {
		t.Errorf("%d token fetches in %s: the page gave up", fetched, watch)
	}
	ts.spoil.Store(0)
	testenv.Eventually(t, 30*time.Second, live(b))
}

// TestBoardEmbeddedProtected: a site embeds a protected feed's board with
// token-url pointing at its own endpoint, which hands tokens only to a
// visitor with the site's session cookie (the credentials the client's
// fetch includes), next to a public feed's board. Both boards go live and
// reach the origin's state; the endpoint saw the cookie every time; the
// origin refused nothing.
func TestBoardEmbeddedProtected(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	n := testenv.StartNATS(t)
	o, pub := startProtected(t, n, freeAddr(t), 2*time.Second, "")
	var withCookie, without atomic.Int64
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "viewer-1", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src "+o.URL+"; connect-src 'self' "+o.URL+
				"; style-src 'unsafe-inline'; require-trusted-types-for 'script'; trusted-types 'none'")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>protected</title>
<script type="module" src="%[1]s/v1/board.js"></script></head><body>
<marquee-board feed="prices" origin="%[1]s" token-url="/live/token?feed={feed}"></marquee-board>
<marquee-board feed="scores" origin="%[1]s"></marquee-board>
</body></html>`, o.URL)
		case "/live/token":
			if c, err := r.Cookie("session"); err != nil || c.Value != "viewer-1" {
				without.Add(1)
				http.Error(w, "log in first", http.StatusUnauthorized)
				return
			}
			withCookie.Add(1)
			tok, err := o.Server.Tokens().Mint(r.URL.Query().Get("feed"), time.Now())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(tok) // package token's own JSON
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(site.Close)

	b := startBrowser(t)
	if err := b.run(chromedp.Navigate(site.URL + "/")); err != nil {
		t.Fatal(err)
	}
	read := waitBoardsLive(t, b)
	pub.halt()
	testenv.Eventually(t, 30*time.Second, func() error {
		e := read()
		for _, f := range feedNames {
			path := "/v1/feeds/" + f + "/snapshot"
			if f == "prices" {
				path = "/v1/feeds/" + f + "/t/" + o.Token(f) + "/snapshot"
			}
			var snap wire.Snapshot
			testenv.GetJSON(t, o.URL+path, &snap)
			if e[f].Seq != snap.Seq {
				return fmt.Errorf("board %s holds seq %d, origin %d", f, e[f].Seq, snap.Seq)
			}
		}
		return nil
	})
	if withCookie.Load() == 0 || without.Load() != 0 {
		t.Errorf("token endpoint: %d requests with the session cookie, %d without; want some, none", withCookie.Load(), without.Load())
	}
	for _, reason := range append(slices.Clone(token.Reasons), "public_feed") {
		if got := o.Metric("marquee_token_refused_total", map[string]string{"reason": reason}); got != 0 {
			t.Errorf("marquee_token_refused_total{reason=%q} = %v, want 0", reason, got)
		}
	}
}

// TestDashboardWithoutTokenSource: opened without ?token_url=, the
// dashboard names the protected feed (a "protected" chip, no board) and
// never requests its routes, and shows the public feed as before; a
// ?token_url= of an origin the page does not allow is ignored the same way.
func TestDashboardWithoutTokenSource(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	n := testenv.StartNATS(t)
	o, _ := startProtected(t, n, freeAddr(t), 2*time.Second, "")
	b := startBrowser(t)
	for _, q := range []string{"", "?token_url=" + url.QueryEscape("http://not-allowed.example/token")} {
		b.open(o.URL + "/" + q)
		testenv.Eventually(t, 20*time.Second, func() error {
			var chip string
			b.eval(`[...document.querySelectorAll("#feed-status li")].find((li) => li.textContent.includes("prices"))?.dataset.state ?? ""`, &chip)
			if chip != "protected" {
				return fmt.Errorf("prices chip state %q, want protected", chip)
			}
			if s := b.mustFeeds()["scores"].Status; s != "live" {
				return fmt.Errorf("scores: %q", s)
			}
			return nil
		})
		var boards int
		b.eval(`document.querySelectorAll('marquee-board[feed="prices"]').length`, &boards)
		if boards != 0 {
			t.Errorf("%q: %d boards for the protected feed without a token source", q, boards)
		}
	}
	for _, f := range b.fetchRequests() {
		if strings.Contains(f.URL, "/v1/feeds/prices") {
			t.Errorf("request for the protected feed without a token source: %s", f.URL)
		}
	}
	if got := o.Metric("marquee_token_refused_total", map[string]string{"reason": token.ReasonMissing}); got != 0 {
		t.Errorf("marquee_token_refused_total{reason=missing} = %v, want 0", got)
	}
}
