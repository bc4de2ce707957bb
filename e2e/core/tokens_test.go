package core_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"marquee/internal/testenv"
	"marquee/sse"
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
	if got := fmt.Sprint(list.Feeds); got != "[{prices /v1/feeds/prices false} {scores  true}]" {
		t.Errorf("feed list %s", got)
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
	if got := o.Metric("marquee_http_streams_closed_total", map[string]string{"mode": "direct", "reason": "token_expired"}); got != 1 {
		t.Errorf("closed{direct, token_expired} = %v, want 1", got)
	}
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
