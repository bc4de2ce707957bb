package browser_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"marquee/internal/testenv"
	"marquee/origin"
	"marquee/wire"
)

var feedNames = []string{"prices", "scores"}

// setup starts NATS, an origin with 3 s segments of 1 s parts that
// recommends clientMode to clients ("" for the default), the initial state
// of both demo feeds and a publisher of one update every 20 ms. The origin
// listens on 127.0.0.1 and allows its dashboard's ?origin= to name
// otherOrigin(o): itself under the name localhost, a cross-origin feed.
func setup(t *testing.T, clientMode string) (*testenv.NATS, *testenv.Origin, *publisher) {
	t.Helper()
	n := testenv.StartNATS(t)
	addr := freeAddr(t)
	opts := testenv.Options{SegmentLength: 3 * time.Second, PartLength: time.Second, Addr: addr}
	cfg := origin.Defaults()
	cfg.DrainDelay, cfg.DrainSpread = 0, 100*time.Millisecond // as testenv's default
	if clientMode != "" {
		cfg.ClientMode = clientMode
	}
	cfg.DashboardOrigins = []string{otherOrigin(addr)}
	opts.Origin = &cfg
	o := testenv.StartOrigin(t, n, opts)
	return n, o, startFeeds(t, n, o)
}

// startFeeds publishes the demo feeds' initial state on n, waits until o
// has every feed, then publishes an update every 20 ms until the test's
// cleanup.
func startFeeds(t *testing.T, n *testenv.NATS, o *testenv.Origin) *publisher {
	t.Helper()
	pub := newPublisher(t, n)
	pub.waitStream()
	pub.initial()
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, f := range feedNames {
			if _, ok := o.Hub.Feed(f); !ok {
				return fmt.Errorf("feed %s not there", f)
			}
		}
		return nil
	})
	pub.start(20 * time.Millisecond)
	t.Cleanup(pub.halt)
	return pub
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// otherOrigin is the origin listening on addr (127.0.0.1:port) under the
// name localhost: another origin to the browser.
func otherOrigin(addr string) string {
	return "http://" + strings.Replace(addr, "127.0.0.1", "localhost", 1)
}

// sameJSON reports whether a and b encode the same value.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(ax, by)
}

// stateDiff describes how the page's state differs from the origin's.
func stateDiff(page pageFeed, o wire.Snapshot) error {
	if page.Seq != o.Seq {
		return fmt.Errorf("page holds seq %d, origin %d", page.Seq, o.Seq)
	}
	for k, v := range o.Entries {
		pv, ok := page.State[k]
		if !ok {
			return fmt.Errorf("key %s missing in the page", k)
		}
		if !sameJSON(pv, v) {
			return fmt.Errorf("key %s: page %s, origin %s", k, pv, v)
		}
	}
	for k := range page.State {
		if _, ok := o.Entries[k]; !ok {
			return fmt.Errorf("key %s in the page but not at the origin (deleted?)", k)
		}
	}
	return nil
}

// waitConverged waits until the page holds exactly the origin's state of
// every feed (publishing has stopped) and returns the page's report.
func waitConverged(t *testing.T, b *browser, o *testenv.Origin) map[string]pageFeed {
	t.Helper()
	var page map[string]pageFeed
	testenv.Eventually(t, 30*time.Second, func() error {
		var err error
		if page, err = b.feeds(); err != nil {
			return err
		}
		for _, f := range feedNames {
			var snap wire.Snapshot
			testenv.GetJSON(t, o.URL+"/v1/feeds/"+f+"/snapshot", &snap)
			if err := stateDiff(page[f], snap); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		return nil
	})
	return page
}

// checkExactlyOnce checks the page against what was published to feed: no
// sequence applied twice or out of order, none that was not published to
// this feed, and every published one either applied as an update or folded
// into a snapshot the page took (sequence at most that snapshot's).
func checkExactlyOnce(t *testing.T, feed string, published []uint64, p pageFeed) {
	t.Helper()
	if len(p.Snapshots) == 0 {
		t.Errorf("%s: the page took no snapshot", feed)
		return
	}
	pub := make(map[uint64]bool, len(published))
	for _, s := range published {
		pub[s] = true
	}
	applied := make(map[uint64]bool, len(p.Applied))
	var last uint64
	for _, s := range p.Applied {
		switch {
		case applied[s]:
			t.Errorf("%s: seq %d applied twice", feed, s)
		case s <= last:
			t.Errorf("%s: seq %d applied after %d", feed, s, last)
		case !pub[s]:
			t.Errorf("%s: applied seq %d was not published to this feed", feed, s)
		}
		applied[s] = true
		last = max(last, s)
	}
	top := slices.Max(p.Snapshots)
	folded, lost := 0, 0
	for _, s := range published {
		switch {
		case applied[s]:
		case s <= top:
			folded++
		default:
			if lost++; lost <= 5 {
				t.Errorf("%s: seq %d was neither applied nor folded into a snapshot (newest snapshot %d)", feed, s, top)
			}
		}
	}
	if lost > 5 {
		t.Errorf("%s: %d sequences lost in all", feed, lost)
	}
	t.Logf("%s: %d published; %d applied once as updates, %d folded into %d snapshots (segments %v); %d duplicate updates and %d old snapshots dropped; statuses %v",
		feed, len(published), len(p.Applied), folded, len(p.Snapshots), p.Segments, p.DroppedUpdates, p.DroppedSnapshots, p.Statuses)
}

// checkFollowedLive checks a page that followed feed in mode without a
// hitch: every update exactly once, never offline, the mode asked for, and
// live from the first catch-up on, with no reconnect (during, e.g.,
// "during rotations").
func checkFollowedLive(t *testing.T, feed string, published []uint64, p pageFeed, mode, during string) {
	t.Helper()
	checkExactlyOnce(t, feed, published, p)
	checkNeverOffline(t, feed, p)
	if p.Mode != mode {
		t.Errorf("%s: page mode %q, want %q (the descriptor's)", feed, p.Mode, mode)
	}
	if want := []string{"catching-up", "live"}; !slices.Equal(p.Statuses, want) {
		t.Errorf("%s: statuses %v, want %v (no reconnect %s)", feed, p.Statuses, want, during)
	}
}

func checkNeverOffline(t *testing.T, feed string, p pageFeed) {
	t.Helper()
	if slices.Contains(p.Statuses, "offline") {
		t.Errorf("%s: the page showed offline: %v", feed, p.Statuses)
	}
	if p.Status != "live" {
		t.Errorf("%s: status %q at the end, want live", feed, p.Status)
	}
}

func distinct(xs []int64) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return len(slices.Compact(s))
}

// TestDashboardFollowsSegments loads the dashboard from one host name with
// its feeds on another (cross-origin, no credentials) and follows at least
// four segment rotations of 3 s while updates arrive every 20 ms, in the
// mode the origin recommends: stream, and parts. At the end the page's
// state is the origin's; every published sequence was applied once or
// folded into a snapshot; the page took one snapshot per segment,
// consecutive; it never left "live" once there. In stream mode it requested
// each segment exactly once (no EventSource replay of a finished segment);
// in parts mode each part exactly once, in order, never further ahead than
// the next part. It saw no gap (no update whose prev is above the seq held).
func TestDashboardFollowsSegments(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser") // before starting anything
	for _, mode := range []string{"stream", "parts"} {
		t.Run(mode, func(t *testing.T) { followSegments(t, mode) })
	}
}

func followSegments(t *testing.T, mode string) {
	_, o, pub := setup(t, mode)
	// A feed of another shape, shown as a generic table.
	for key, body := range map[string]string{
		"oslo":   `{"city":"Oslo","temp_c":3.5,"sky":"snow","wind":{"kmh":12,"dir":"N"}}`,
		"lisbon": `{"city":"Lisbon","temp_c":17,"sky":"sun"}`,
	} {
		if err := pub.publish("weather", key, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := o.Hub.Feed("weather"); !ok {
			return errors.New("feed weather not there")
		}
		return nil
	})
	b := startBrowser(t) // stopped before the origin
	feedOrigin := otherOrigin(o.Addr)
	b.open(o.URL + "/?origin=" + url.QueryEscape(feedOrigin))
	var base string
	b.eval(`window.__marquee.base`, &base)
	if base != feedOrigin {
		t.Fatalf("page base %q, want the allowed ?origin= %q", base, feedOrigin)
	}

	testenv.Eventually(t, 90*time.Second, func() error {
		page, err := b.feeds()
		if err != nil {
			return err
		}
		for _, f := range feedNames {
			if n := distinct(page[f].Segments); n < 5 {
				return fmt.Errorf("%s: snapshots of %d segments so far, want 5 (4 rotations)", f, n)
			}
		}
		return nil
	})
	// The screenshot half-way through a segment, when prices have moved.
	d := o.Descriptor("prices")
	mid := time.UnixMilli((d.SegmentStart + d.SegmentEnd) / 2)
	if time.Now().After(mid) {
		mid = mid.Add(time.Duration(d.SegmentLength * float64(time.Second)))
	}
	time.Sleep(time.Until(mid))
	if mode == "stream" {
		b.screenshot("dashboard.png")
	} else {
		b.screenshot("dashboard-" + mode + ".png")
	}
	pub.halt()
	page := waitConverged(t, b, o)

	for _, f := range feedNames {
		p := page[f]
		checkFollowedLive(t, f, pub.published(f), p, mode, "during rotations")
		for i := 1; i < len(p.Segments); i++ {
			if p.Segments[i] != p.Segments[i-1]+1 {
				t.Errorf("%s: snapshots of segments %v, want consecutive segments, one each", f, p.Segments)
				break
			}
		}
		if p.DroppedSnapshots != 0 {
			t.Errorf("%s: %d old snapshots dropped: a finished segment was read again", f, p.DroppedSnapshots)
		}
		if p.Gaps != 0 || p.Repairs != 0 {
			t.Errorf("%s: the page saw %d gaps (%d repair attempts) from one steady origin", f, p.Gaps, p.Repairs)
		}
		if mode == "parts" {
			held := o.Metric("marquee_part_held_total", map[string]string{"feed": f, "kind": "part"})
			answered := o.Metric("marquee_part_responses_total", map[string]string{"feed": f, "kind": "part"})
			t.Logf("%s: %v part requests answered, %v of them held until their part ended", f, answered, held)
			if held < 1 {
				t.Errorf("%s: no part request was held (blocking reload)", f)
			}
			continue
		}
		held := o.Metric("marquee_segment_responses_total", map[string]string{"feed": f, "kind": "held"})
		finished := o.Metric("marquee_segment_responses_total", map[string]string{"feed": f, "kind": "finished"})
		t.Logf("%s: segment responses held (opened early) %v, finished %v", f, held, finished)
		if held < 1 {
			t.Errorf("%s: no segment was requested before it started", f)
		}
		if finished > 1 { // at most the first, when the page joined at a boundary
			t.Errorf("%s: %v finished segments served: the page read segments after they ended", f, finished)
		}
	}

	if mode == "parts" {
		if es := b.eventSources(); len(es) > 0 {
			t.Errorf("parts mode opened EventSources: %q", es)
		}
		checkParts(t, b, o, feedOrigin, true)
		checkDOM(t, b, page)
		checkGeneric(t, b)
		return
	}

	// Each segment URL was requested once, on the feed origin, and only
	// segment URLs were used.
	seen := map[string]int{}
	for _, u := range b.eventSources() {
		seen[u]++
		if !strings.HasPrefix(u, feedOrigin+"/v1/feeds/") || !strings.Contains(u, "/segments/") {
			t.Errorf("EventSource on %s, want segments on %s", u, feedOrigin)
		}
	}
	for u, n := range seen {
		if n > 1 {
			t.Errorf("EventSource requested %s %d times", u, n)
		}
	}

	checkDOM(t, b, page)
	checkGeneric(t, b)
}

// partURL matches a parts-mode URL: feed, segment, parts or upto, part.
var partURL = regexp.MustCompile(`^(.*)/v1/feeds/([^/]+)/segments/(\d+)/(parts|upto)/(\d+)$`)

// checkParts checks the page's parts-mode requests: all on the feed
// origin, none further ahead than the next part (the part in progress when
// it was sent, or the one after), and none answered 404 (too early). When
// steady (no restart), also: each part URL requested once; per feed one
// upto (the join), then consecutive parts across segment boundaries; every
// request answered 200 but the last, which is still held.
func checkParts(t *testing.T, b *browser, o *testenv.Origin, feedOrigin string, steady bool) {
	t.Helper()
	d := o.Descriptor("prices")
	seg := time.Duration(d.SegmentLength * float64(time.Second))
	part := time.Duration(d.PartLength * float64(time.Second))
	const slack = 50 * time.Millisecond // timestamps of the browser vs the origin's grid
	type pos struct{ n, k int64 }
	byFeed := map[string][]pos{}
	lastStatus := map[string]int64{}
	seen := map[string]int{}
	lead := -time.Hour // the furthest ahead of its part's start a request was sent
	reqs := b.fetchRequests()
	for _, r := range reqs {
		if !strings.Contains(r.URL, "/segments/") {
			continue
		}
		m := partURL.FindStringSubmatch(r.URL)
		if m == nil || m[1] != feedOrigin {
			t.Errorf("fetch %s: want parts/upto URLs on %s", r.URL, feedOrigin)
			continue
		}
		f := m[2]
		n, _ := strconv.ParseInt(m[3], 10, 64)
		k, _ := strconv.ParseInt(m[5], 10, 64)
		start := time.UnixMilli(0).Add(time.Duration(n)*seg + time.Duration(k)*part)
		if l := start.Sub(r.Sent); l > lead {
			lead = l
		}
		if start.Sub(r.Sent) > part+slack {
			t.Errorf("%s sent %v before its part started: further ahead than the next part", r.URL, start.Sub(r.Sent))
		}
		if r.Status == 404 {
			t.Errorf("%s: 404 (too early)", r.URL)
		}
		seen[r.URL]++
		if steady {
			if s, ok := lastStatus[f]; ok && s != 200 {
				t.Errorf("%s: a request before %s was answered %d, want 200", f, r.URL, s)
			}
			lastStatus[f] = r.Status
			if upto := m[4] == "upto"; upto != (len(byFeed[f]) == 0) {
				t.Errorf("%s: %s is request %d of the feed: want one upto, first, then parts", f, r.URL, len(byFeed[f])+1)
			}
			if ps := byFeed[f]; len(ps) > 0 {
				p := ps[len(ps)-1]
				next := pos{p.n, p.k + 1}
				if next.k == int64(d.Parts) {
					next = pos{p.n + 1, 0}
				}
				if (pos{n, k}) != next {
					t.Errorf("%s: %s after segment %d part %d, want segment %d part %d", f, r.URL, p.n, p.k, next.n, next.k)
				}
			}
		}
		byFeed[f] = append(byFeed[f], pos{n, k})
	}
	for u, c := range seen {
		if steady && c > 1 {
			t.Errorf("%s requested %d times", u, c)
		}
	}
	for f, ps := range byFeed {
		t.Logf("%s: %d part requests, segment %d part %d to segment %d part %d", f, len(ps), ps[0].n, ps[0].k, ps[len(ps)-1].n, ps[len(ps)-1].k)
	}
	if lead <= 0 {
		t.Logf("parts: every request was sent after its part started, the earliest %v after", -lead.Round(time.Millisecond))
	} else {
		t.Logf("parts: the earliest request was sent %v before its part started (allowed: one part, %v)", lead.Round(time.Millisecond), part)
	}
	for _, f := range feedNames {
		if len(byFeed[f]) < 2 {
			t.Errorf("%s: %d part requests", f, len(byFeed[f]))
		}
	}
}

// checkGeneric checks the weather feed, of no known shape, is a table of
// key and fields, with nested values flattened into dotted names.
func checkGeneric(t *testing.T, b *browser) {
	t.Helper()
	var weather struct {
		Head []string   `json:"head"`
		Rows [][]string `json:"rows"`
	}
	b.eval(`(() => {
		const s = `+boardJS+`("weather");
		return {
			head: [...s.querySelectorAll("thead th")].map((th) => (th.querySelector("button")?.firstChild ?? th).textContent),
			rows: [...s.querySelectorAll("tbody tr[data-key]")].map((tr) => [...tr.cells].map((c) => c.textContent)),
		};
	})()`, &weather)
	if want := []string{"Key", "city", "temp_c", "sky", "wind.kmh", "wind.dir"}; !slices.Equal(weather.Head, want) {
		t.Errorf("weather columns %q, want %q", weather.Head, want)
	}
	want := [][]string{{"lisbon", "Lisbon", "17", "sun", "—", "—"}, {"oslo", "Oslo", "3.5", "snow", "12", "N"}}
	if fmt.Sprint(weather.Rows) != fmt.Sprint(want) {
		t.Errorf("weather rows %q, want %q", weather.Rows, want)
	}
}

// checkDOM checks the tables show the state: one row per key, and the last
// price and the scores as the state has them.
func checkDOM(t *testing.T, b *browser, page map[string]pageFeed) {
	t.Helper()
	type row struct {
		Key   string   `json:"key"`
		Cells []string `json:"cells"`
	}
	var rows map[string][]row
	b.eval(`Object.fromEntries(["prices", "scores"].map((f) => [f,
		[...`+boardJS+`(f).querySelectorAll("tbody tr[data-key]")].map((tr) => ({
			key: tr.dataset.key,
			cells: [...tr.cells].map((c) => (c.firstChild ? c.firstChild.textContent : "")),
		}))]))`, &rows)
	for _, f := range feedNames {
		if got, want := len(rows[f]), len(page[f].State); got != want {
			t.Errorf("%s: %d rows on the page, %d keys in the state", f, got, want)
		}
	}
	for _, r := range rows["prices"] {
		var v struct {
			Price float64 `json:"price"`
		}
		json.Unmarshal(page["prices"].State[r.Key], &v)
		if got, want := strings.ReplaceAll(r.Cells[2], ",", ""), strconv.FormatFloat(v.Price, 'f', 2, 64); got != want {
			t.Errorf("prices %s: last shows %q, state has %s", r.Key, got, want)
		}
	}
	for _, r := range rows["scores"] {
		var v struct {
			Home   int    `json:"home_score"`
			Away   int    `json:"away_score"`
			Status string `json:"status"`
		}
		json.Unmarshal(page["scores"].State[r.Key], &v)
		if v.Status == "scheduled" {
			continue
		}
		if got, want := r.Cells[2]+"-"+r.Cells[3], fmt.Sprintf("%d-%d", v.Away, v.Home); got != want {
			t.Errorf("scores %s: shows %s (away-home), state has %s", r.Key, got, want)
		}
	}
}

// TestDashboardRecoversFromRestart stops the origin for a few seconds while
// publishing goes on into JetStream, then starts it again on the same port
// and store. The page reconnects by itself, never shows "offline", and ends
// in the origin's state with every sequence applied once or folded into a
// snapshot; in each mode (chosen by ?mode=). While the origin is down the
// boards are marked stale (live dots off); once live again, they are not.
func TestDashboardRecoversFromRestart(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	for _, mode := range []string{"stream", "direct", "parts"} {
		t.Run(mode, func(t *testing.T) {
			_, o, pub := setup(t, "")
			b := startBrowser(t)
			b.open(o.URL + "/?mode=" + mode)
			live := func(min int) error {
				page, err := b.feeds()
				if err != nil {
					return err
				}
				for _, f := range feedNames {
					if p := page[f]; p.Status != "live" || len(p.Applied) < min {
						return fmt.Errorf("%s: %s with %d updates applied", f, p.Status, len(p.Applied))
					}
				}
				return nil
			}
			testenv.Eventually(t, 30*time.Second, func() error { return live(10) })

			o.Stop()
			stopped := time.Now()
			testenv.Eventually(t, 30*time.Second, func() error {
				page, err := b.feeds()
				if err != nil {
					return err
				}
				for _, f := range feedNames {
					if page[f].Status == "live" {
						return fmt.Errorf("%s still live with the origin stopped", f)
					}
				}
				return nil
			})
			checkStale(t, b, true)
			if mode == "stream" {
				b.screenshot("dashboard-outage.png")
			}
			time.Sleep(time.Until(stopped.Add(4 * time.Second)))
			o.Restart()
			t.Logf("origin down for %s", time.Since(stopped).Round(100*time.Millisecond))
			testenv.Eventually(t, 60*time.Second, func() error { return live(0) })
			checkStale(t, b, false)
			if mode != "direct" {
				// Recovered, and follows a rotation from there.
				newest := func() map[string]int64 {
					m := map[string]int64{}
					for f, p := range b.mustFeeds() {
						m[f] = slices.Max(append(p.Segments, 0))
					}
					return m
				}
				rejoined := newest()
				testenv.Eventually(t, 30*time.Second, func() error {
					now := newest()
					for _, f := range feedNames {
						if now[f] <= rejoined[f] {
							return fmt.Errorf("%s: no rotation since segment %d", f, rejoined[f])
						}
					}
					return nil
				})
			}
			b.screenshot("dashboard-restart-" + mode + ".png")
			pub.halt()
			page := waitConverged(t, b, o)
			for _, f := range feedNames {
				p := page[f]
				checkExactlyOnce(t, f, pub.published(f), p)
				checkNeverOffline(t, f, p)
				if !slices.Contains(p.Statuses, "reconnecting") {
					t.Errorf("%s: statuses %v: the page never showed reconnecting", f, p.Statuses)
				}
				if p.Mode != mode {
					t.Errorf("%s: page mode %q, want %q", f, p.Mode, mode)
				}
			}
			if mode == "parts" {
				checkParts(t, b, o, o.URL, false)
			}
			checkDOM(t, b, page)
		})
	}
}

// checkStale checks every board is marked stale (the table carries
// data-stale, a note says since when, no live dot shows on a game clock),
// or is not (no marking, live dots on).
func checkStale(t *testing.T, b *browser, stale bool) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, func() error {
		l := b.layout()
		for _, f := range feedNames {
			bd := l.Boards[f]
			if bd.Stale != stale {
				return fmt.Errorf("%s: stale %v, want %v", f, bd.Stale, stale)
			}
			if f == "scores" && (bd.Dots > 0) == stale {
				return fmt.Errorf("%s: %d live dots shown, stale %v", f, bd.Dots, stale)
			}
			var note struct {
				Hidden bool   `json:"hidden"`
				Text   string `json:"text"`
			}
			b.eval(`(() => { const n = `+boardJS+`("`+f+`").querySelector(".stale-note"); return { hidden: n.hidden, text: n.textContent }; })()`, &note)
			if note.Hidden == stale || (stale && !strings.Contains(note.Text, "as of ")) {
				return fmt.Errorf("%s: stale note %+v, stale %v", f, note, stale)
			}
		}
		return nil
	})
}

// TestDashboardOriginAllowList: the dashboard shows another origin's feeds
// only when the server allows that origin (MARQUEE_DASHBOARD_ORIGINS, served
// in the page); any other ?origin= is ignored with a console warning, and
// the page shows its own origin's feeds, so that a link cannot put another
// site's data under this site's address.
func TestDashboardOriginAllowList(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	_, o, _ := setup(t, "")
	b := startBrowser(t)
	for _, tc := range []struct{ param, want string }{
		{"http://localhost:1", ""},      // not allowed: another port
		{"https://marquee.example", ""}, // not allowed
		{"javascript:alert(1)", ""},     // not http(s)
		{otherOrigin(o.Addr), otherOrigin(o.Addr)},
		{o.URL + "/", o.URL}, // the page's own origin
	} {
		b.open(o.URL + "/?origin=" + url.QueryEscape(tc.param))
		var base string
		b.eval(`window.__marquee.base`, &base)
		if base != tc.want {
			t.Errorf("?origin=%s: page base %q, want %q", tc.param, base, tc.want)
		}
		testenv.Eventually(t, 20*time.Second, func() error {
			for _, f := range feedNames {
				if p := b.mustFeeds()[f]; p.Status != "live" {
					return fmt.Errorf("?origin=%s: %s is %q", tc.param, f, p.Status)
				}
			}
			return nil
		})
	}
	b.mu.Lock()
	warned := 0
	for _, l := range b.logs {
		if strings.Contains(l, "ignoring ?origin=") {
			warned++
		}
	}
	b.mu.Unlock()
	if warned != 3 {
		t.Errorf("%d console warnings about an ignored ?origin=, want 3", warned)
	}
}
