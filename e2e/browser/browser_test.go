// Package browser_test drives marquee's public dashboard and browser client
// (origin/web) in a real headless Chromium against a real origin with
// embedded NATS and short segments.
//
// The browser is Debian's chromium, driven over the DevTools protocol with
// chromedp: it starts /usr/bin/chromium itself and speaks CDP from Go, so
// the test needs no Node and no driver binary. Without chromium the tests
// skip; under CI=true they fail (testenv.NeedProgram).
package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"marquee/internal/testenv"
)

// browser is one headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab

	mu         sync.Mutex // guards the fields below
	logs       []string   // console warnings and errors, browser log entries
	exceptions []string   // uncaught exceptions in the page
	csp        []string   // Content-Security-Policy violations
	sources    []string   // EventSource request URLs, in order
	fetches    []*fetched // fetch() requests, in order
	byID       map[network.RequestID]*fetched
}

// fetched is one fetch() request of the page.
type fetched struct {
	URL    string
	Sent   time.Time // browser's wall clock
	Status int64     // response status; 0: no response (yet, or failed)
}

// startBrowser starts Chromium with a fresh profile. It is stopped at test
// cleanup, after which what the page logged is reported and uncaught
// exceptions or CSP violations fail the test.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.NeedProgram(t, "chromium", "chromium-browser")
	b := &browser{t: t, byID: map[network.RequestID]*fetched{}}
	t.Cleanup(b.report) // runs last
	// Not t.TempDir: Chromium's helpers may still write to the profile for
	// a moment after the browser exits, so removal retries.
	profile, err := os.MkdirTemp("", "marquee-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; os.RemoveAll(profile) != nil && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	chromedp.ListenTarget(ctx, b.listen)
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	b.ctx = ctx
	return b
}

func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.exceptions = append(b.exceptions, msg)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
			var parts []string
			for _, a := range e.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			b.logs = append(b.logs, "console."+string(e.Type)+": "+strings.Join(parts, " "))
		}
	case *cdplog.EventEntryAdded:
		line := fmt.Sprintf("%s %s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
		b.logs = append(b.logs, line)
		if strings.Contains(e.Entry.Text, "Content Security Policy") {
			b.csp = append(b.csp, line)
		}
	case *network.EventRequestWillBeSent:
		switch e.Type {
		case network.ResourceTypeEventSource:
			b.sources = append(b.sources, e.Request.URL)
		case network.ResourceTypeFetch:
			f := &fetched{URL: e.Request.URL}
			if e.WallTime != nil {
				f.Sent = e.WallTime.Time()
			}
			b.fetches = append(b.fetches, f)
			b.byID[e.RequestID] = f
		}
	case *network.EventResponseReceived:
		if f := b.byID[e.RequestID]; f != nil && e.Response != nil {
			f.Status = e.Response.Status
		}
	}
}

func (b *browser) report() {
	b.mu.Lock()
	defer b.mu.Unlock()
	const most = 40
	for i, l := range b.logs {
		if i == most {
			b.t.Logf("browser: ... %d more log lines", len(b.logs)-most)
			break
		}
		b.t.Logf("browser: %s", l)
	}
	for _, e := range b.exceptions {
		b.t.Errorf("uncaught exception in the page: %s", e)
	}
	for _, c := range b.csp {
		b.t.Errorf("CSP violation: %s", c)
	}
}

// eventSources returns the EventSource requests the page made so far.
func (b *browser) eventSources() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sources...)
}

// fetchRequests returns the fetch() requests the page made so far.
func (b *browser) fetchRequests() []fetched {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]fetched, len(b.fetches))
	for i, f := range b.fetches {
		out[i] = *f
	}
	return out
}

// run runs actions on the tab with a time limit.
func (b *browser) run(actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// open navigates to url and waits for the dashboard's script to start.
func (b *browser) open(url string) {
	b.t.Helper()
	if err := b.run(chromedp.Navigate(url), chromedp.WaitReady("#feed-status li", chromedp.ByQuery)); err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
}

// pageFeed is what the dashboard reports about one feed (window.__marquee.dump()).
type pageFeed struct {
	Mode             string                     `json:"mode"`
	Applied          []uint64                   `json:"applied"`   // update seqs applied, in order
	Snapshots        []uint64                   `json:"snapshots"` // snapshot seqs taken, in order
	Segments         []int64                    `json:"segments"`  // their segment numbers
	DroppedUpdates   int                        `json:"droppedUpdates"`
	DroppedGaps      int                        `json:"droppedGaps"` // updates dropped because they showed a gap
	DroppedSnapshots int                        `json:"droppedSnapshots"`
	Statuses         []string                   `json:"statuses"`     // every status change, in order
	Gaps             int                        `json:"gaps"`         // the client's stats: gaps seen,
	Repairs          int                        `json:"repairs"`      // repair attempts,
	GapsRepaired     int                        `json:"gapsRepaired"` // gaps repaired
	Seq              uint64                     `json:"seq"`
	Status           string                     `json:"status"`
	State            map[string]json.RawMessage `json:"state"`
}

// feeds reads the dashboard's report of every feed.
func (b *browser) feeds() (map[string]pageFeed, error) {
	var raw json.RawMessage
	if err := b.run(chromedp.Evaluate(`window.__marquee ? window.__marquee.dump() : {}`, &raw)); err != nil {
		return nil, err
	}
	out := map[string]pageFeed{}
	return out, json.Unmarshal(raw, &out)
}

// mustFeeds is feeds that fails the test on error.
func (b *browser) mustFeeds() map[string]pageFeed {
	b.t.Helper()
	f, err := b.feeds()
	if err != nil {
		b.t.Fatalf("read page: %v", err)
	}
	return f
}

// viewport emulates a screen of w × h CSS pixels at scale 1 (mobile: a
// phone's, which honours the page's viewport meta tag) and the colour
// scheme ("light" or "dark") the page sees as prefers-color-scheme.
func (b *browser) viewport(w, h int64, mobile bool, scheme string) {
	b.t.Helper()
	if err := b.run(
		emulation.SetDeviceMetricsOverride(w, h, 1, mobile),
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}),
	); err != nil {
		b.t.Fatalf("viewport %dx%d %s: %v", w, h, scheme, err)
	}
}

// boardJS is a JavaScript function of a feed name that returns the shadow
// root of the page's <marquee-board> for that feed.
const boardJS = `((f) => document.querySelector('marquee-board[feed="' + f + '"]')?.shadowRoot)`

// eval evaluates a JavaScript expression and decodes its result into v.
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	if err := b.run(chromedp.Evaluate(expr, v)); err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

// screenshot saves a PNG of the whole page under the artifacts directory
// ($MARQUEE_ARTIFACTS, else artifacts/ at the module root) and logs its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	var png []byte
	if err := b.run(chromedp.FullScreenshot(&png, 100)); err != nil { // quality 100: PNG
		b.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("MARQUEE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(moduleRoot(b.t), "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatalf("artifacts: %v", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// moduleRoot returns the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
