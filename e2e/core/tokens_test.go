package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"marquee/internal/app"
	"marquee/internal/testenv"
	"marquee/sse"
	"marquee/token"
	"marquee/wire"
)

// TestTokenProtectedFeed: over real HTTP, a protected feed's un-tokened
// routes are 403 no-store; with the current token its descriptor names
// only tokened URLs and two viewers of the tokened segment get the same
// bytes; the feed list marks it.
func TestTokenProtectedFeed(t *testing.T) {
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 2 * time.Second, Config: testenv.Protect(0, "scores")})
	n.Publish("feeds.scores.init", `{"x":0}`)
	n.Publish("feeds.prices.init", `{"p":1}`)
	waitFeed(t, o, "scores")
	waitFeed(t, o, "prices")

	for _, p := range []string{"", "/snapshot", "/segments/1", "/events"} {
		resp := get(t, o.URL+"/v1/feeds/scores"+p, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("un-tokened %s: %d, Cache-Control %q", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	tok := o.Token("scores")
	var d wire.Descriptor
	testenv.GetJSON(t, o.URL+"/v1/feeds/scores/t/"+tok, &d)
	base := "/v1/feeds/scores/t/" + tok + "/"
	for _, u := range []string{d.URL, d.NextURL, d.DirectURL, d.SnapshotURL, d.PartURL, d.UptoURL} {
		if !strings.HasPrefix(u, base) {
			t.Errorf("descriptor URL %q is not under %s", u, base)
		}
	}
	if !d.Protected || d.TokenExpires <= time.Now().UnixMilli() {
		t.Errorf("descriptor protected %v, token_expires %d", d.Protected, d.TokenExpires)
	}
	// The next segment, held, then live to its end: two viewers, one body.
	next := d.NextURL
	a, b := readAll(get(t, o.URL+next, nil)), readAll(get(t, o.URL+next, map[string]string{"Cookie": "s=1", "Last-Event-ID": "3"}))
	n.Publish("feeds.scores.live", `{"x":1}`)
	ra, rb := <-a, <-b
	if !ra.clean || !rb.clean || string(ra.body) != string(rb.body) {
		t.Fatalf("viewers: clean %v %v, same bytes %v", ra.clean, rb.clean, string(ra.body) == string(rb.body))
	}
	evs := events(t, ra.body)
	if last := evs[len(evs)-1]; last.Type != "next" || !strings.Contains(string(last.Data), `"url":"/v1/feeds/scores/segments/`) {
		t.Errorf("segment ends with %s %s, want an un-tokened next", last.Type, last.Data)
	}
	var list wire.FeedList
	testenv.GetJSON(t, o.URL+"/v1/feeds", &list)
	if want := []wire.FeedRef{{Feed: "prices", URL: "/v1/feeds/prices"}, {Feed: "scores", Protected: true}}; !slices.Equal(list.Feeds, want) {
		t.Errorf("feed list %+v, want %+v", list.Feeds, want)
	}
	if got := o.Metric("marquee_token_refused_total", map[string]string{"reason": "missing"}); got != 4 {
		t.Errorf("refused{missing} = %v, want 4", got)
	}
}

// TestTokenDirectExpires: a direct-mode stream on a tokened route, handed
// off to the shared writers (real HTTP/1.1), ends cleanly once its token
// expires; a reconnect with a fresh token and Last-Event-ID resumes
// without a snapshot.
func TestTokenDirectExpires(t *testing.T) {
	n := testenv.StartNATS(t)
	// 2 s segments, windows of 2 (4 s), overlap one segment: a token
	// lives at most 6 s.
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 2 * time.Second, Config: testenv.Protect(2, "scores")})
	n.Publish("feeds.scores.init", `{"x":0}`)
	waitFeed(t, o, "scores")
	tokens := o.Server.Tokens()
	tok, err := tokens.Mint("scores", o.Hub.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, o.URL+"/v1/feeds/scores/t/"+tok.Value+"/events", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("direct: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	done := readAll(resp)
	n.Publish("feeds.scores.a", `{"x":1}`)
	var r readResult
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the direct stream did not end after its token expired")
	}
	if !r.clean {
		t.Errorf("direct stream ended with %v, want a clean end", r.err)
	}
	if now := time.Now(); now.Before(tok.Expires) {
		t.Errorf("direct stream ended at %v, before its token expired (%v)", now, tok.Expires)
	}
	// Counted once the writer has closed the connection, which the viewer
	// may see first.
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := o.Metric("marquee_http_streams_closed_total", map[string]string{"mode": "direct", "reason": "token_expired"}); got != 1 {
			return fmt.Errorf("closed{direct, token_expired} = %v, want 1", got)
		}
		return nil
	})
	if got := o.Metric("marquee_http_handed_off_total", map[string]string{"mode": "direct"}); got != 1 && runtime.GOOS == "linux" {
		t.Errorf("handed_off{direct} = %v, want 1: the hand-off path is what this test is for", got)
	}
	evs := events(t, r.body)
	last := evs[len(evs)-1].ID
	if last == "" {
		t.Fatalf("no event id in %q", r.body)
	}

	// The old token is refused now; a fresh one resumes from the last id.
	if resp := get(t, o.URL+"/v1/feeds/scores/t/"+tok.Value+"/events", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired token: %d", resp.StatusCode)
	}
	n.Publish("feeds.scores.b", `{"x":2}`)
	var seqB string
	testenv.Eventually(t, 5*time.Second, func() error {
		var d wire.Descriptor
		testenv.GetJSON(t, o.URL+"/v1/feeds/scores/t/"+o.Token("scores"), &d)
		if seqB = strconv.FormatUint(d.Seq, 10); seqB == last {
			return fmt.Errorf("update b not applied yet")
		}
		return nil
	})
	resp = get(t, o.URL+"/v1/feeds/scores/t/"+o.Token("scores")+"/events", map[string]string{"Last-Event-ID": last})
	defer resp.Body.Close()
	ev, err := sse.NewDecoder(resp.Body).Next()
	if err != nil {
		t.Fatal(err)
	}
	var u wire.Update
	if ev.Type != "update" || json.Unmarshal(ev.Data, &u) != nil || u.Key != "b" || ev.ID != seqB {
		t.Errorf("resumed with %s id %s %s, want update b (id %s)", ev.Type, ev.ID, ev.Data, seqB)
	}
}

// TestTokenHeadersGolden records the headers of a protected feed's
// responses: the refusals (no-store for the browser and the CDN) and the
// tokened descriptor and segment (cached like their public twins).
func TestTokenHeadersGolden(t *testing.T) {
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 3 * time.Second, Config: testenv.Protect(0, "scores")})
	n.Publish("feeds.scores.init", `{"x":0}`)
	n.Publish("feeds.prices.init", `{"p":1}`)
	waitFeed(t, o, "scores")
	waitFeed(t, o, "prices")
	seg := freshSegment(t, o, "prices")
	tok, other := o.Token("scores"), o.Token("prices")
	var out strings.Builder
	for _, p := range []string{
		"/v1/feeds/scores",
		"/v1/feeds/scores/t/k1.1-" + strings.Repeat("A", 43),
		"/v1/feeds/prices/t/" + other,
		"/v1/feeds/scores/t/" + tok,
		fmt.Sprintf("/v1/feeds/scores/t/%s/segments/%d", tok, seg),
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", o.URL+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		name := strings.ReplaceAll(p, strconv.FormatInt(seg, 10), "{current}")
		name = strings.ReplaceAll(name, tok, "{token}")
		name = strings.ReplaceAll(name, other, "{token}")
		recordHeaders(&out, name, resp)
	}
	checkGolden(t, "token-headers.golden", out.String())
}

// TestTokenKeyRotation: the rotation procedure of the README on a running
// origin (restarted with each new setting): a token of the old key stays
// valid while the key is listed, the new key mints once it is first, and
// once the old key is removed its tokens are refused as unknown_key.
func TestTokenKeyRotation(t *testing.T) {
	const (
		oldKey = "k0:the-old-secret-0123456789"
		newKey = "k1:the-new-secret-0123456789"
	)
	keys := oldKey
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 2 * time.Second, Config: func(c *app.Config) {
		c.Origin.Tokens.Keys = token.Secret(keys) // read at every (re)start
		c.Origin.Tokens.ProtectedFeeds = []string{"scores"}
	}})
	n.Publish("feeds.scores.init", `{"x":0}`)
	waitFeed(t, o, "scores")
	status := func(tok string) int {
		t.Helper()
		resp := get(t, o.URL+"/v1/feeds/scores/t/"+tok+"/snapshot", nil)
		resp.Body.Close()
		return resp.StatusCode
	}
	old := o.Token("scores")
	if !strings.HasPrefix(old, "k0.") || status(old) != 200 {
		t.Fatalf("old key: token %q, status %d", old, status(old))
	}
	for _, step := range []struct {
		keys      string
		mints     string
		oldStatus int
	}{
		{oldKey + "," + newKey, "k0.", 200}, // 1. the new key validates everywhere
		{newKey + "," + oldKey, "k1.", 200}, // 2. it mints; old tokens still work
		{newKey, "k1.", 403},                // 3. the old key is gone
	} {
		keys = step.keys
		o.Restart()
		waitFeed(t, o, "scores")
		tok := o.Token("scores")
		if !strings.HasPrefix(tok, step.mints) || status(tok) != 200 {
			t.Errorf("keys %s: minted %q (status %d), want a %s token that is served", ids(step.keys), tok, status(tok), step.mints)
		}
		if got := status(old); got != step.oldStatus {
			t.Errorf("keys %s: the old key's token: %d, want %d", ids(step.keys), got, step.oldStatus)
		}
	}
	if got := o.Metric("marquee_token_refused_total", map[string]string{"reason": "unknown_key"}); got != 1 {
		t.Errorf("refused{unknown_key} = %v, want 1", got)
	}
}

// ids returns the key ids of a MARQUEE_TOKEN_KEYS value (never a secret).
func ids(keys string) string {
	var out []string
	for kv := range strings.SplitSeq(keys, ",") {
		id, _, _ := strings.Cut(kv, ":")
		out = append(out, id)
	}
	return strings.Join(out, ",")
}
