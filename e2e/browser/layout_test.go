package browser_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"marquee/internal/testenv"
)

// screens are the viewports the page must fit, phones and desktops.
var screens = []struct {
	w, h   int64
	mobile bool
}{{360, 740, true}, {390, 844, true}, {1280, 800, false}, {1440, 900, false}}

// layout is what layoutJS measures.
type layout struct {
	ScrollWidth int      `json:"scrollWidth"` // document.scrollingElement.scrollWidth
	InnerWidth  int      `json:"innerWidth"`
	Wide        []string `json:"wide"` // elements (shadow trees included) reaching outside the viewport
	Boards      map[string]struct {
		Kind    string   `json:"kind"`
		Rows    int      `json:"rows"`
		Display string   `json:"display"` // of a row: "table-row", or "grid" when reflowed
		Unseen  []string `json:"unseen"`  // cells with text that are not fully on screen
		Stale   bool     `json:"stale"`   // the table carries data-stale
		Dots    int      `json:"dots"`    // live dots shown
		Bg      string   `json:"bg"`      // the board's background colour
	} `json:"boards"`
}

// layoutJS measures the page, its boards' shadow trees included.
const layoutJS = `(() => {
	const W = innerWidth, wide = [];
	const name = (e) => {
		const h = e.getRootNode().host;
		const cls = typeof e.className == "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "";
		return (h ? 'marquee-board[feed="' + h.getAttribute("feed") + '"] ' : "") + e.localName + cls;
	};
	const walk = (root) => {
		for (const e of root.querySelectorAll("*")) {
			const r = e.getBoundingClientRect();
			if (r.width > 0 && r.height > 0 && (r.left < -0.5 || r.right > W + 0.5))
				wide.push(name(e) + " from " + Math.round(r.left) + " to " + Math.round(r.right));
			if (e.shadowRoot) walk(e.shadowRoot);
		}
	};
	walk(document);
	const seen = (e) => {
		const r = e.getBoundingClientRect();
		return r.width >= 1 && r.height >= 1 && r.left >= -0.5 && r.right <= W + 0.5 && getComputedStyle(e).visibility != "hidden";
	};
	const boards = {};
	for (const b of document.querySelectorAll("marquee-board")) {
		const s = b.shadowRoot, rows = [...s.querySelectorAll("tbody tr[data-key]:not([hidden])")];
		boards[b.getAttribute("feed")] = {
			kind: b.kind,
			rows: rows.length,
			display: rows.length ? getComputedStyle(rows[0]).display : "",
			unseen: rows.flatMap((tr) => [...tr.cells].filter((c) => c.textContent.trim() && !seen(c)).map((c) => tr.dataset.key + " " + c.className)).slice(0, 10),
			stale: s.querySelector("table").hasAttribute("data-stale"),
			dots: [...s.querySelectorAll(".live-dot")].filter((d) => getComputedStyle(d).display != "none" && d.getBoundingClientRect().width > 0).length,
			bg: getComputedStyle(s.querySelector(".board")).backgroundColor,
		};
	}
	return { scrollWidth: document.scrollingElement.scrollWidth, innerWidth: W, wide: wide.slice(0, 20), boards };
})()`

func (b *browser) layout() layout {
	b.t.Helper()
	var l layout
	b.eval(layoutJS, &l)
	return l
}

// checkFits checks nothing reaches outside the viewport: no horizontal
// page scroll, no element wider, every cell with text on screen.
func checkFits(t *testing.T, name string, l layout) {
	t.Helper()
	if l.ScrollWidth > l.InnerWidth {
		t.Errorf("%s: the page is %d px wide in a %d px viewport", name, l.ScrollWidth, l.InnerWidth)
	}
	for _, w := range l.Wide {
		t.Errorf("%s: %s: outside the %d px viewport", name, w, l.InnerWidth)
	}
	for f, bd := range l.Boards {
		if len(bd.Unseen) > 0 {
			t.Errorf("%s: %s: cells not on screen: %q", name, f, bd.Unseen)
		}
	}
}

// dark reports whether a CSS rgb() colour is dark.
func dark(rgb string) bool {
	var r, g, b int
	fmt.Sscanf(strings.NewReplacer("rgba(", "", "rgb(", "", ",", " ").Replace(rgb), "%d %d %d", &r, &g, &b)
	return r+g+b < 3*128
}

// waitBoards waits until the page's boards for feeds are live with rows.
func waitBoards(t *testing.T, b *browser, feeds ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		l := b.layout()
		for _, f := range feeds {
			if bd, ok := l.Boards[f]; !ok || bd.Rows == 0 {
				return fmt.Errorf("board %s: %+v", f, bd)
			}
			if p := b.mustFeeds()[f]; p.Status != "live" {
				return fmt.Errorf("%s is %q", f, p.Status)
			}
		}
		return nil
	})
}

// TestDashboardLayout shows the dashboard on phones (360, 390 × 844) and
// desktops (1280, 1440), light and dark: the page never scrolls sideways,
// no element (in the boards' shadow trees too) reaches outside the
// viewport, every cell with text is on screen, the tables reflow into
// rows of lines on phones and stay tables on desktops, and the boards
// follow the colour scheme. Then, at 1280: an upcoming game shows its start
// time; a feed created after the page loaded shows within seconds; a
// generic feed's nested values are flattened into columns and a changed
// cell flashes; the "as of" time is the last event's; the prices table
// sorts from the keyboard.
func TestDashboardLayout(t *testing.T) {
	testenv.NeedProgram(t, "chromium", "chromium-browser")
	_, o, pub := setup(t, "")
	start := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Minute)
	for _, m := range []struct{ feed, key, body string }{
		{"weather", "oslo", `{"city":"Oslo","temp_c":3.5,"sky":"snow","wind":{"kmh":12,"dir":"N"}}`},
		{"weather", "lisbon", `{"city":"Lisbon","temp_c":17,"sky":"sun"}`},
		{"scores", "nba.sea-mia", `{"league":"NBA","home":"MIA","home_name":"Miami","away":"SEA","away_name":"Seattle",` +
			`"home_score":0,"away_score":0,"period":"","clock":"12:00","status":"scheduled","start_time":"` + start.Format(time.RFC3339) + `"}`},
	} {
		if err := pub.publish(m.feed, m.key, []byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := o.Hub.Feed("weather"); !ok {
			return errors.New("feed weather not there")
		}
		return nil
	})
	b := startBrowser(t)
	b.viewport(390, 844, true, "light")
	b.open(o.URL + "/")
	waitBoards(t, b, "prices", "scores", "weather")

	for _, sc := range screens {
		for _, scheme := range []string{"light", "dark"} {
			name := fmt.Sprintf("%dx%d %s", sc.w, sc.h, scheme)
			b.viewport(sc.w, sc.h, sc.mobile, scheme)
			time.Sleep(300 * time.Millisecond) // a frame or two: container queries, fonts
			l := b.layout()
			checkFits(t, name, l)
			for f, bd := range l.Boards {
				want := "table-row"
				if sc.w < 500 {
					want = "grid"
				}
				if bd.Display != want {
					t.Errorf("%s: %s rows are %q, want %q", name, f, bd.Display, want)
				}
				if dark(bd.Bg) != (scheme == "dark") {
					t.Errorf("%s: %s board background %s in the %s scheme", name, f, bd.Bg, scheme)
				}
			}
			t.Logf("%s: page %d px in %d; boards %v", name, l.ScrollWidth, l.InnerWidth, l.Boards)
			b.screenshot(fmt.Sprintf("layout-%dx%d-%s.png", sc.w, sc.h, scheme))
		}
	}
	b.viewport(1280, 800, false, "light")

	t.Run("upcoming game", func(t *testing.T) {
		var g struct {
			Time     string `json:"time"`
			Datetime string `json:"datetime"`
			Scores   string `json:"scores"`
			Dash     string `json:"dash"`
		}
		b.eval(`(() => {
			const tr = `+boardJS+`("scores").querySelector('tr[data-key="nba.sea-mia"]');
			return { time: tr.cells[5].textContent, datetime: tr.cells[5].querySelector("time")?.getAttribute("datetime") ?? "",
				scores: tr.cells[2].textContent + tr.cells[3].textContent, dash: getComputedStyle(tr.cells[3], "::before").content };
		})()`, &g)
		at, err := time.Parse(time.RFC3339, g.Datetime)
		if !strings.HasPrefix(g.Time, "Upcoming ") || err != nil || !at.Equal(start) {
			t.Errorf("upcoming game: time cell %q, datetime %q, want Upcoming and %s", g.Time, g.Datetime, start.Format(time.RFC3339))
		}
		if g.Scores != "" || g.Dash != "none" {
			t.Errorf("upcoming game: scores %q, dash %s: want neither", g.Scores, g.Dash)
		}
	})

	t.Run("new feed", func(t *testing.T) {
		sent := time.Now()
		if err := pub.publish("news", "a", []byte(`{"title":"Hello","by":{"name":"Ann"},"tags":["x","y"]}`)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 15*time.Second, func() error {
			if bd := b.layout().Boards["news"]; bd.Rows != 1 {
				return errors.New("no news board yet")
			}
			return nil
		})
		took := time.Since(sent)
		t.Logf("a feed created after the page loaded showed after %v", took.Round(10*time.Millisecond))
		if took > 8*time.Second {
			t.Errorf("the new feed took %v to show, want within seconds", took)
		}
		var cells []string
		b.eval(`[...`+boardJS+`("news").querySelectorAll("tbody tr[data-key] > *")].map((c) => c.textContent)`, &cells)
		if want := []string{"a", "Hello", "Ann", "x, y"}; !slices.Equal(cells, want) {
			t.Errorf("news row %q, want %q", cells, want)
		}
	})

	t.Run("generic flash", func(t *testing.T) {
		// Record every cell that flashes (class "changed", removed again
		// when the animation ends).
		b.eval(`(() => { window.flashed = [];
			new MutationObserver((ms) => ms.forEach((m) => m.target.classList.contains("changed") &&
				flashed.push(m.target.closest("tr").dataset.key + " " + m.target.dataset.label)))
			.observe(`+boardJS+`("weather"), { attributes: true, attributeFilter: ["class"], subtree: true }); })()`, nil)
		if err := pub.publish("weather", "oslo", []byte(`{"city":"Oslo","temp_c":3.5,"sky":"snow","wind":{"kmh":20,"dir":"N"}}`)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			var kmh string
			var flashed []string
			b.eval(boardJS+`("weather").querySelector('tr[data-key="oslo"]').cells[4].textContent`, &kmh)
			b.eval(`[...new Set(flashed)]`, &flashed)
			if kmh != "20" || !slices.Equal(flashed, []string{"oslo wind.kmh"}) {
				return fmt.Errorf("wind.kmh %q, cells flashed %q: want 20, and only that cell flashed", kmh, flashed)
			}
			return nil
		})
	})

	t.Run("as of", func(t *testing.T) {
		var asof struct {
			Text     string `json:"text"`
			Datetime string `json:"datetime"`
			Time     int64  `json:"time"`
		}
		time.Sleep(1100 * time.Millisecond) // the board's clock tick
		b.eval(`(() => { const b = document.querySelector('marquee-board[feed="prices"]'), a = b.shadowRoot.querySelector(".asof");
			return { text: a.textContent, datetime: a.querySelector("time")?.getAttribute("datetime") ?? "", time: b.subscription.time }; })()`, &asof)
		at, err := time.Parse(time.RFC3339, asof.Datetime)
		if !strings.HasPrefix(asof.Text, "As of ") || err != nil {
			t.Fatalf("as of: %q, datetime %q", asof.Text, asof.Datetime)
		}
		// Shown to the second, updated every second.
		if d := time.UnixMilli(asof.Time).Sub(at); d < 0 || d > 2200*time.Millisecond {
			t.Errorf("as of %s, the last event's time %s", at, time.UnixMilli(asof.Time))
		}
		if d := time.Since(at); d > 3*time.Second {
			t.Errorf("as of %s: %v old while live with updates every 20 ms", at, d)
		}
	})

	t.Run("sort", func(t *testing.T) {
		pub.halt() // a still table: the order is checked exactly
		time.Sleep(500 * time.Millisecond)
		pcts := func() (sorted string, focused bool, vals []float64) {
			var r struct {
				Sort    string   `json:"sort"`
				Focused bool     `json:"focused"`
				Pcts    []string `json:"pcts"`
			}
			b.eval(`(() => { const s = `+boardJS+`("prices"), th = s.querySelector('th[data-sort="pct"]');
				return { sort: th.getAttribute("aria-sort") ?? "", focused: s.activeElement == th.querySelector("button"),
					pcts: [...s.querySelectorAll("tbody tr[data-key] td.pct")].map((td) => td.textContent) }; })()`, &r)
			for _, p := range r.Pcts {
				f, err := strconv.ParseFloat(strings.NewReplacer("+", "", "−", "-", "±", "", " %", "").Replace(p), 64)
				if err != nil {
					t.Fatalf("pct %q: %v", p, err)
				}
				vals = append(vals, f)
			}
			return r.Sort, r.Focused, vals
		}
		b.eval(``+boardJS+`("prices").querySelector('th[data-sort="pct"] button').focus()`, nil)
		for _, key := range []struct{ key, want string }{{kb.Enter, "descending"}, {" ", "ascending"}} {
			if err := b.run(chromedp.KeyEvent(key.key)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			sorted, focused, vals := pcts()
			if sorted != key.want || !focused {
				t.Errorf("key %q: Chg %% aria-sort %q (focus kept %v), want %s", key.key, sorted, focused, key.want)
			}
			ok := slices.IsSortedFunc(vals, func(a, b float64) int {
				if key.want == "descending" {
					a, b = b, a
				}
				return cmp.Compare(a, b)
			})
			if !ok || len(vals) != 20 {
				t.Errorf("key %q: Chg %% column %v, want %s", key.key, vals, key.want)
			}
		}
		b.screenshot("layout-sorted.png")
	})
}
