package browser_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"marquee/internal/testenv"
	"marquee/wire"
)

// exampleHTML returns the example page of the README's "Embedding a
// board" section with origin in place of https://marquee.example: the
// page the test serves is the one the documentation tells people to copy.
func exampleHTML(t *testing.T, origin string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok1 := strings.Cut(string(b), "\n## Embedding a board\n")
	_, code, ok2 := strings.Cut(sec, "```html\n")
	code, _, ok3 := strings.Cut(code, "```\n")
	if !ok1 || !ok2 || !ok3 || !strings.Contains(code, "https://marquee.example/v1/board.js") {
		t.Fatal("README.md: no html example loading https://marquee.example/v1/board.js under ## Embedding a board")
	}
	return strings.ReplaceAll(code, "https://marquee.example", origin)
}

// embedded is what the test reads of one <marquee-board> on the page.
type embedded struct {
	Status  string                     `json:"status"`
	Kind    string                     `json:"kind"`
	Mode    string                     `json:"mode"`
	Seq     uint64                     `json:"seq"`
	State   map[string]json.RawMessage `json:"state"`
	Rows    int                        `json:"rows"`    // rows shown
	Title   string                     `json:"title"`   // the heading
	TitlePx string                     `json:"titlePx"` // its font size (::part(title) in the page's style)
	Up      string                     `json:"up"`      // the board's --up colour (--marquee-up in the page's style)
	Pcts    []string                   `json:"pcts"`    // the Chg % column, in order
	Stale   bool                       `json:"stale"`
}

const embeddedJS = `Object.fromEntries([...document.querySelectorAll("marquee-board")].map((b) => {
	const s = b.shadowRoot, sub = b.subscription;
	return [b.getAttribute("feed"), {
		status: b.status, kind: b.kind, mode: sub?.mode ?? "", seq: sub?.seq ?? 0, state: Object.fromEntries(sub?.state ?? []),
		rows: s.querySelectorAll("tbody tr[data-key]:not([hidden])").length,
		title: s.querySelector("h2").textContent, titlePx: getComputedStyle(s.querySelector("h2")).fontSize,
		up: getComputedStyle(s.querySelector(".board")).getPropertyValue("--up").trim(),
		pcts: [...s.querySelectorAll("tbody tr[data-key]:not([hidden]) td.pct")].map((td) => td.textContent),
		stale: s.querySelector("table").hasAttribute("data-stale"),
	}];
}))`

// TestBoardEmbedded serves the README's example page from a second server,
// another origin than marquee's (with a strict CSP of its own: scripts and
// connections only from the marquee origin, Trusted Types enforced), and
// checks the boards it embeds load board.js and client.js from the marquee
// origin, read the feeds there without credentials, show the origin's
// state (every game; the eight prices that moved most, by Chg %), take the
// page's theme (custom properties, ::part), and fit a desktop and a phone,
// light and dark. Screenshots: board-embed-*.png.
func TestBoardEmbedded(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	_, o, pub := setup(t, "")
	page := exampleHTML(t, o.URL)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src "+o.URL+"; connect-src "+o.URL+
			"; style-src 'unsafe-inline'; require-trusted-types-for 'script'; trusted-types 'none'")
		io.WriteString(w, page)
	}))
	t.Cleanup(site.Close)
	if site.URL == o.URL {
		t.Fatal("the site and the origin are one origin")
	}

	b := startBrowser(t)
	b.viewport(1280, 800, false, "light")
	if err := b.run(chromedp.Navigate(site.URL + "/")); err != nil {
		t.Fatal(err)
	}
	read := waitBoardsLive(t, b)
	for _, sc := range []struct {
		w, h   int64
		mobile bool
		scheme string
	}{{1280, 800, false, "light"}, {390, 844, true, "dark"}} {
		name := fmt.Sprintf("%dx%d %s", sc.w, sc.h, sc.scheme)
		b.viewport(sc.w, sc.h, sc.mobile, sc.scheme)
		time.Sleep(300 * time.Millisecond)
		l := b.layout()
		checkFits(t, name, l)
		for f, bd := range l.Boards {
			if dark(bd.Bg) != (sc.scheme == "dark") {
				t.Errorf("%s: %s board background %s", name, f, bd.Bg)
			}
		}
		b.screenshot(fmt.Sprintf("board-embed-%dx%d-%s.png", sc.w, sc.h, sc.scheme))
	}

	pub.halt()
	var e map[string]embedded
	testenv.Eventually(t, 30*time.Second, func() error {
		e = read()
		for _, f := range feedNames {
			var snap wire.Snapshot
			testenv.GetJSON(t, o.URL+"/v1/feeds/"+f+"/snapshot", &snap)
			if err := stateDiff(pageFeed{Seq: e[f].Seq, State: e[f].State}, snap); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		return nil
	})
	time.Sleep(400 * time.Millisecond) // a sorted board reorders 250 ms after an update
	e = read()
	scores, prices := e["scores"], e["prices"]
	if scores.Kind != "scores" || scores.Rows != len(scores.State) || scores.Title != "Scores" {
		t.Errorf("scores board: kind %q, %d rows for %d games, title %q", scores.Kind, scores.Rows, len(scores.State), scores.Title)
	}
	if prices.Kind != "prices" || prices.Rows != 8 || prices.Title != "Movers" {
		t.Errorf("prices board: kind %q, %d rows (limit 8), title %q", prices.Kind, prices.Rows, prices.Title)
	}
	// The eight shown are the top eight by change since the open.
	var all []float64
	for _, raw := range prices.State {
		var v struct {
			Pct float64 `json:"change_pct"`
		}
		json.Unmarshal(raw, &v)
		all = append(all, v.Pct)
	}
	want := topPcts(all, 8)
	if got := strings.Join(prices.Pcts, " "); got != want {
		t.Errorf("prices board shows Chg %% %s, want the top eight %s", got, want)
	}
	if scores.TitlePx != "20px" || prices.Up != "#0969da" {
		t.Errorf("theme: title %s (::part(title) 1.25rem = 20px), ticker --up %q (--marquee-up #0969da)", scores.TitlePx, prices.Up)
	}
	if scores.Up == prices.Up {
		t.Errorf("the scores board has the ticker's --marquee-up: %q", scores.Up)
	}

	// Everything the boards read came from the marquee origin.
	var sources []string
	for _, f := range b.fetchRequests() {
		sources = append(sources, f.URL)
	}
	sources = append(sources, b.eventSources()...)
	if len(sources) == 0 {
		t.Error("the boards made no requests")
	}
	for _, u := range sources {
		if !strings.HasPrefix(u, o.URL+"/v1/feeds/") {
			t.Errorf("request to %s, want the marquee origin's feeds (%s)", u, o.URL)
		}
	}
	// The attributes a page may change, on a board the page adds: only
	// NBA games, no title; then as a table; then removed (its client
	// closes). It announced its status.
	b.eval(`(() => {
		const m = document.createElement("marquee-board");
		window.events = [];
		m.addEventListener("marquee-status", (e) => events.push(e.detail.status + (e.detail.stale ? " stale" : "")));
		m.setAttribute("feed", "scores");
		m.setAttribute("keys", "nba.");
		m.setAttribute("heading", "");
		document.body.append((window.api = m));
	})()`, nil)
	type apiView struct {
		Status string   `json:"status"`
		Kind   string   `json:"kind"`
		Keys   []string `json:"keys"`
		Title  bool     `json:"title"` // shown
		Head   int      `json:"head"`  // column headers
		Events []string `json:"events"`
	}
	api := func() apiView {
		var v apiView
		b.eval(`(() => { const m = api, s = m.shadowRoot;
			return { status: m.status, kind: m.kind, keys: [...s.querySelectorAll("tbody tr[data-key]")].map((tr) => tr.dataset.key),
				title: !s.querySelector("h2").hidden, head: s.querySelectorAll("thead th").length, events }; })()`, &v)
		return v
	}
	var nba []string
	for k := range scores.State {
		if strings.HasPrefix(k, "nba.") {
			nba = append(nba, k)
		}
	}
	slices.Sort(nba)
	testenv.Eventually(t, 20*time.Second, func() error {
		if v := api(); v.Status != "live" || v.Kind != "scores" || !slices.Equal(v.Keys, nba) || v.Title {
			return fmt.Errorf("keys=nba. heading=\"\": %+v, want live scores of %q, no title", v, nba)
		}
		return nil
	})
	b.eval(`api.setAttribute("kind", "table")`, nil)
	if v := api(); v.Kind != "table" || !slices.Equal(v.Keys, nba) || v.Head < 8 {
		t.Errorf("kind=table: %+v, want a table of %q with a column per field", v, nba)
	}
	var closed bool
	if err := b.run(chromedp.Evaluate(`(() => { const m = api; m.remove();
		return new Promise((r) => setTimeout(() => r(m.subscription == null), 50)); })()`, &closed,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	if v := api(); !closed || !slices.Equal(v.Events, []string{"catching-up", "live"}) {
		t.Errorf("removed board: closed %v; status events %q, want catching-up, live", closed, v.Events)
	}

	var fallback float64
	b.eval(`document.querySelector("marquee-board a").getBoundingClientRect().width`, &fallback)
	if fallback != 0 {
		t.Errorf("the fallback link shows (%v px) with the board running", fallback)
	}
}

// topPcts formats the n highest of pcts as the board shows them, highest
// first.
func topPcts(pcts []float64, n int) string {
	s := append([]float64(nil), pcts...)
	for i := range s { // a selection sort: 20 values
		for j := i + 1; j < len(s); j++ {
			if s[j] > s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	var out []string
	for _, p := range s[:min(n, len(s))] {
		sign := "+"
		switch {
		case p < 0:
			sign, p = "−", -p
		case p == 0:
			sign = "±"
		}
		out = append(out, fmt.Sprintf("%s%.2f %%", sign, p))
	}
	return strings.Join(out, " ")
}

// waitBoardsLive waits until the page's board of every demo feed is live
// with rows, and returns the function that reads the boards.
func waitBoardsLive(t *testing.T, b *browser) func() map[string]embedded {
	t.Helper()
	read := func() map[string]embedded {
		var e map[string]embedded
		b.eval(embeddedJS, &e)
		return e
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		e := read()
		for _, f := range feedNames {
			if e[f].Status != "live" || e[f].Rows == 0 {
				return fmt.Errorf("board %s: %s, %d rows", f, e[f].Status, e[f].Rows)
			}
		}
		return nil
	})
	return read
}
