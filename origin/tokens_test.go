package origin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"marquee/segmenter"
	"marquee/token"
	"marquee/wire"
)

// Test keys of the token tests: "new" mints, "old" still validates.
const (
	testKeys   = "new:new-secret-new-secret,old:old-secret-old-secret"
	testWindow = 2 // segments: 20 s windows with testSegmenter's 10 s segments
)

// protectedConfig returns the default origin configuration with feeds
// protected by testKeys, windows of testWindow segments and the default
// overlap (one segment): the bubble's first token is valid from t0−5s to
// t0+30s.
func protectedConfig(feeds ...string) Config {
	c := Defaults()
	c.Tokens = token.Config{Keys: testKeys, ProtectedFeeds: feeds, Window: testWindow}
	return c
}

// mint returns the current token of feed on the bubble's origin.
func (b *bubble) mint(feed string) string {
	b.t.Helper()
	tok, err := b.s.tokens.Mint(feed, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	return tok.Value
}

// keyring returns a keyring over keys with the bubble's grid.
func (b *bubble) keyring(keys string) *token.Keyring {
	b.t.Helper()
	k, err := token.New(token.Config{Keys: token.Secret(keys), Window: testWindow}, b.hub.Config().SegmentLength)
	if err != nil {
		b.t.Fatal(err)
	}
	return k
}

// feedRoutes are the feed routes below /v1/feeds/{feed}, as paths under a
// feed's base for the bubble's segment n0 (part 0).
func (b *bubble) feedRoutes() []string {
	seg := fmt.Sprintf("/segments/%d", b.n0)
	return []string{"", "/snapshot", seg, seg + "/parts/0", seg + "/upto/0", "/events"}
}

// wantRefused checks a refusal: code, no-store everywhere, a JSON
// wire.Error, the handler ended.
func (b *bubble) wantRefused(x *exchange, what string, code int) {
	b.t.Helper()
	got, _ := x.status()
	var e wire.Error
	if err := json.Unmarshal([]byte(x.body()), &e); got != code || err != nil || e.Code != code {
		b.t.Errorf("%s: %d %q, want a JSON %d", what, got, x.body(), code)
	}
	if cc, cdn := x.head("Cache-Control"), x.head("CDN-Cache-Control"); cc != "no-store" || cdn != "no-store" {
		b.t.Errorf("%s: Cache-Control %q, CDN-Cache-Control %q; want no-store", what, cc, cdn)
	}
	if ended, _ := x.ended(); !ended {
		b.t.Errorf("%s: still running", what)
	}
}

func (b *bubble) tokenRefused(reason string) float64 {
	return counter(b.s.m.tokenRefused.WithLabelValues(reason))
}

// TestTokenUntokenedRefused: every un-tokened route of a protected feed is
// 403 no-store, counted as missing; another feed stays public.
func TestTokenUntokenedRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, protectedConfig("prices"), testSegmenter())
		all := newBubble(t, protectedConfig("*"), testSegmenter())
		b.sleepUntil(1500 * time.Millisecond) // part 0 is finished
		for _, p := range b.feedRoutes() {
			b.wantRefused(b.get("/v1/feeds/prices"+p), "un-tokened "+p, http.StatusForbidden)
		}
		if got, want := b.tokenRefused(token.ReasonMissing), float64(len(b.feedRoutes())); got != want {
			t.Errorf("refused{missing} = %v, want %v", got, want)
		}
		// No stream was opened for any of them.
		if got := counter(b.s.m.openStreams.WithLabelValues(modeStream)) + counter(b.s.m.openStreams.WithLabelValues(modeDirect)); got != 0 {
			t.Errorf("open streams %v", got)
		}
		// An unknown feed under "*" is refused the same way, saying
		// nothing about whether it exists.
		all.wantRefused(all.get("/v1/feeds/nosuch"), "unknown feed under *", http.StatusForbidden)
		// A feed not listed is public.
		b.update("AAPL", `{"p":2}`) // keeps "prices" alive; "scores" is new
		if err := b.hub.Apply("scores", segmenter.Update{Key: "g", Value: json.RawMessage(`{"h":1}`), Seq: 100, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		b.want(b.get("/v1/feeds/scores"), "a public feed", http.StatusOK, 1500*time.Millisecond)
	})
}

// TestTokenServes: with the current token every route answers 200, the
// same bytes to every viewer; the descriptor's URLs carry the token.
func TestTokenServes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, protectedConfig("prices"), testSegmenter())
		b.sleepUntil(1500 * time.Millisecond)
		tok := b.mint("prices")
		base := "/v1/feeds/prices/t/" + tok

		d := b.get(base)
		b.want(d, "descriptor", http.StatusOK, 1500*time.Millisecond)
		var desc wire.Descriptor
		if err := json.Unmarshal([]byte(d.body()), &desc); err != nil {
			t.Fatal(err)
		}
		seg := fmt.Sprintf("%s/segments/%d", base, b.n0)
		for name, got := range map[string]string{
			"url":          desc.URL,
			"next_url":     desc.NextURL,
			"direct_url":   desc.DirectURL,
			"snapshot_url": desc.SnapshotURL,
			"part_url":     desc.PartURL,
			"upto_url":     desc.UptoURL,
		} {
			if !strings.HasPrefix(got, base+"/") {
				t.Errorf("descriptor %s = %q, want it under %s", name, got, base)
			}
		}
		if desc.URL != seg || desc.PartPath(b.n0, 0) != seg+"/parts/0" {
			t.Errorf("descriptor url %q, part %q", desc.URL, desc.PartPath(b.n0, 0))
		}
		if want := b.at(30 * time.Second).UnixMilli(); !desc.Protected || desc.TokenExpires != want {
			t.Errorf("descriptor protected %v, token_expires %d; want true, %d (window end + one segment)", desc.Protected, desc.TokenExpires, want)
		}
		if got := d.head("Cache-Control"); got != "public, max-age=1" {
			t.Errorf("descriptor Cache-Control %q", got)
		}

		// Two viewers of the segment, the parts and the snapshot: 200,
		// cacheable, the same bytes.
		b.want(b.get(base+"/snapshot"), "snapshot", http.StatusOK, 1500*time.Millisecond)
		for _, p := range []string{seg + "/parts/0", seg + "/upto/0"} {
			x, y := b.get(p), b.get(p)
			b.want(x, p, http.StatusOK, 1500*time.Millisecond)
			if x.body() != y.body() || x.body() == "" || !strings.Contains(x.head("Cache-Control"), "immutable") {
				t.Errorf("%s: bodies differ or empty, Cache-Control %q", p, x.head("Cache-Control"))
			}
		}
		v1, v2 := b.get(seg), b.get(seg)
		public := b.keyring(testKeys) // same keys: the token of the same window
		if again, _ := public.Mint("prices", time.Now()); again.Value != tok {
			t.Errorf("minted twice in one window: %q, %q", tok, again.Value)
		}
		b.update("AAPL", `{"p":3}`)
		b.sleepUntil(10 * time.Second)
		b.want(v1, "segment viewer 1", http.StatusOK, 1500*time.Millisecond)
		b.wantEnded(v1, "segment viewer 1", 10*time.Second)
		if v1.body() != v2.body() || !strings.Contains(v1.body(), `"p":3`) {
			t.Errorf("viewers got different bytes:\n%s\n---\n%s", v1.body(), v2.body())
		}
		// The segment's own next event is shared by every window: no token.
		if next := fmt.Sprintf(`"url":"/v1/feeds/prices/segments/%d"`, b.n0+1); !strings.Contains(v1.body(), next) {
			t.Errorf("segment body lacks the un-tokened next event %s: %s", next, tail(v1.body()))
		}
		if got := v1.head("Cache-Control"); !strings.HasPrefix(got, "public, max-age=0, s-maxage=") {
			t.Errorf("segment Cache-Control %q", got)
		}

		// The next segment with the same token (still in its window), and
		// a token minted with the old key, still listed.
		old, err := b.keyring(testKeys).MintWithKey("prices", "old", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		part := b.get(fmt.Sprintf("%s/segments/%d/parts/0", base, b.n0+1))
		b.want(b.get("/v1/feeds/prices/t/"+old.Value+"/snapshot"), "snapshot with the old key's token", http.StatusOK, 10*time.Second)
		b.sleepUntil(11500 * time.Millisecond)
		b.want(part, "next segment's part 0", http.StatusOK, 11*time.Second)
		for _, r := range append(token.Reasons, tokenPublicFeed) {
			if got := b.tokenRefused(r); got != 0 {
				t.Errorf("refused{%s} = %v, want 0", r, got)
			}
		}
		// The list marks the feed and gives no path that would 403.
		var list wire.FeedList
		if err := json.Unmarshal([]byte(b.get("/v1/feeds").body()), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Feeds) != 1 || list.Feeds[0] != (wire.FeedRef{Feed: "prices", Protected: true}) {
			t.Errorf("feed list %+v", list.Feeds)
		}
	})
}

// TestTokenRefusals: every bad token is 403 no-store on every route,
// counted by reason; a public feed's tokened routes are 404.
func TestTokenRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, protectedConfig("prices", "scores"), testSegmenter())
		pub := newBubble(t, protectedConfig("scores"), testSegmenter())
		b.sleepUntil(1500 * time.Millisecond)
		good := b.mint("prices")
		now := time.Now()
		mint := func(k *token.Keyring, feed string, at time.Time) string {
			tok, err := k.Mint(feed, at)
			if err != nil {
				t.Fatal(err)
			}
			return tok.Value
		}
		cases := []struct {
			name, token, reason string
		}{
			{"malformed", "not-a-token", token.ReasonMalformed},
			{"unknown key", mint(b.keyring("gone:some-other-secret-0"), "prices", now), token.ReasonUnknownKey},
			{"wrong secret", mint(b.keyring("new:not-the-right-secret"), "prices", now), token.ReasonBadMAC},
			{"other feed", b.mint("scores"), token.ReasonBadMAC},
			{"tampered", good[:len(good)-2] + "AA", token.ReasonBadMAC},
			{"past window", mint(b.s.tokens, "prices", now.Add(-40*time.Second)), token.ReasonExpired},
			{"future window", mint(b.s.tokens, "prices", now.Add(40*time.Second)), token.ReasonNotYetValid},
		}
		for _, c := range cases {
			for _, p := range b.feedRoutes() {
				b.wantRefused(b.get("/v1/feeds/prices/t/"+c.token+p), c.name+" "+p, http.StatusForbidden)
			}
			if got, want := b.tokenRefused(c.reason), float64(len(b.feedRoutes())); got < want {
				t.Errorf("%s: refused{%s} = %v, want at least %v", c.name, c.reason, got, want)
			}
		}
		if got := b.tokenRefused(token.ReasonBadMAC); got != 3*float64(len(b.feedRoutes())) {
			t.Errorf("refused{bad_mac} = %v", got)
		}

		// The good token expires at the window's end plus the overlap.
		b.want(b.get("/v1/feeds/prices/t/"+good), "good token", http.StatusOK, 1500*time.Millisecond)
		b.sleepUntil(30*time.Second - time.Millisecond)
		b.want(b.get("/v1/feeds/prices/t/"+good+"/snapshot"), "good token at its last ms", http.StatusOK, 30*time.Second-time.Millisecond)
		b.sleepUntil(30 * time.Second)
		b.wantRefused(b.get("/v1/feeds/prices/t/"+good+"/snapshot"), "good token at its expiry", http.StatusForbidden)

		// A public feed's tokened routes: 404, pointing at the public path.
		tok := pub.mint("prices") // a genuine token does not matter: the feed is public
		for _, p := range pub.feedRoutes() {
			x := pub.get("/v1/feeds/prices/t/" + tok + p)
			pub.wantRefused(x, "public feed, tokened "+p, http.StatusNotFound)
			if want := "use /v1/feeds/prices" + p + `"`; !strings.Contains(x.body(), want) {
				t.Errorf("public feed, tokened %s: %s, want it to name %s", p, x.body(), want)
			}
		}
		if got := pub.tokenRefused(tokenPublicFeed); got != float64(len(pub.feedRoutes())) {
			t.Errorf("refused{public_feed} = %v", got)
		}
		// Every reason is pre-created and the exposition lints clean.
		if n := testutil.CollectAndCount(pub.s.m.tokenRefused); n != len(token.Reasons)+1 {
			t.Errorf("%d token refusal series, want %d", n, len(token.Reasons)+1)
		}
		if probs, err := testutil.GatherAndLint(pub.reg, "marquee_token_refused_total"); err != nil || len(probs) > 0 {
			t.Errorf("lint: %v %v", probs, err)
		}
	})
}

// TestTokenDirectEndsAtExpiry: a direct-mode stream on a tokened route
// ends, cleanly, when its token expires; the viewer reconnects with a
// fresh token and Last-Event-ID and misses nothing.
func TestTokenDirectEndsAtExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, protectedConfig("prices"), testSegmenter())
		b.sleepUntil(time.Second)
		first := b.mint("prices")
		x := b.get("/v1/feeds/prices/t/" + first + "/events")
		b.want(x, "direct", http.StatusOK, time.Second)
		if got := x.head("Cache-Control"); got != "no-store" {
			t.Errorf("direct Cache-Control %q", got)
		}
		b.sleepUntil(25 * time.Second) // the next window; the first token is still valid
		fresh := b.mint("prices")
		seq := b.update("AAPL", `{"p":25}`)
		synctest.Wait()
		b.sleepUntil(30*time.Second - time.Nanosecond)
		if ended, _ := x.ended(); ended {
			t.Fatal("direct stream ended before its token expired")
		}
		b.sleepUntil(30 * time.Second)
		b.wantEnded(x, "direct at token expiry", 30*time.Second)
		if aborted, p := x.outcome(); aborted || p != nil {
			t.Errorf("direct: aborted %v, panic %v; want a clean end", aborted, p)
		}
		if !strings.Contains(x.body(), `"p":25`) {
			t.Errorf("direct body lacks the update: %s", x.body())
		}
		if got := counter(b.s.m.streamClosed.WithLabelValues(modeDirect, reasonExpired)); got != 1 {
			t.Errorf("closed{direct, token_expired} = %v, want 1", got)
		}
		// The old token is refused now; the fresh one resumes.
		b.wantRefused(b.get("/v1/feeds/prices/t/"+first+"/events"), "expired token", http.StatusForbidden)
		seq2 := b.update("AAPL", `{"p":30}`)
		y := b.get("/v1/feeds/prices/t/"+fresh+"/events", "Last-Event-ID", fmt.Sprint(seq))
		b.want(y, "reconnect", http.StatusOK, 30*time.Second)
		if body := y.body(); strings.Contains(body, "event: snapshot") || !strings.Contains(body, fmt.Sprintf("id: %d\n", seq2)) {
			t.Errorf("reconnect with Last-Event-ID %d: %s", seq, body)
		}
	})
}
