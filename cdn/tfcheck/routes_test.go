package tfcheck

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"marquee/cdn"
	"marquee/internal/app"
	"marquee/origin"
	"marquee/segmenter"
)

// TestRoutesMatchServers: origin and internal/app build their muxes from
// PublicRoutes and AdminRoutes (a route without a table entry cannot be
// registered; origin's and app's tests check the construction), so the edge
// checks of this package cover every route there is. Here: the sample paths
// below resolve to their own pattern with the real matcher, so they
// exercise what they claim to.
func TestRoutesMatchServers(t *testing.T) {
	for _, routes := range [][]cdn.Route{cdn.PublicRoutes, cdn.AdminRoutes} {
		mux := http.NewServeMux()
		for _, r := range routes {
			mux.HandleFunc("GET "+r.Pattern, func(http.ResponseWriter, *http.Request) {})
		}
		for _, r := range routes {
			for _, p := range routeExamples(r.Pattern) {
				req, _ := http.NewRequest(http.MethodGet, "http://x"+p, nil)
				if _, pat := mux.Handler(req); pat != "GET "+r.Pattern {
					t.Errorf("sample path %s resolves to %q, want %q", p, pat, "GET "+r.Pattern)
				}
			}
		}
	}
}

// routeSamples are the values substituted for a pattern's wildcards. Feed
// names include marquee's own path words, the cases where edge patterns
// could confuse one route for another.
var routeSamples = map[string][]string{
	"feed": {"prices", "events", "segments", "snapshot", "parts", "upto", "metrics", "a-B_9"},
	"n":    {"0", "29466120"},
	"k":    {"0", "59"},
	"file": {"app.css", "dashboard.v2.js"},
	// Well-formed tokens (package token), one with every character a mac
	// may hold.
	"token": {"k1.1767225600-wBDhEHBv3MS8T5aBhX2xaF7uxU0llhQSFk-aQqWdRx4", "K9z.1767225000-_-" + strings.Repeat("a", 41)},
}

// routeExamples returns request paths that pattern matches.
func routeExamples(pattern string) []string {
	paths := []string{""}
	for seg := range strings.SplitSeq(strings.TrimPrefix(pattern, "/"), "/") {
		var vals []string
		switch {
		case seg == "{$}":
			vals = []string{""}
		case strings.HasPrefix(seg, "{"):
			vals = routeSamples[strings.Trim(seg, "{}")]
		default:
			vals = []string{seg}
		}
		var next []string
		for _, p := range paths {
			for _, v := range vals {
				next = append(next, p+"/"+v)
			}
		}
		paths = next
	}
	return paths
}

// allRoutes returns the public and admin routes, each pattern once.
func allRoutes() []cdn.Route {
	out := slices.Clone(cdn.PublicRoutes)
	for _, r := range cdn.AdminRoutes {
		if !slices.ContainsFunc(out, func(o cdn.Route) bool { return o.Pattern == r.Pattern }) {
			out = append(out, r)
		}
	}
	return out
}

// ambiguousPaths are no routes of marquee, but an edge's wildcards may take
// them for both an uncached and a cached route. An edge must not cache them
// (the origin answers them with an error, no-store): when in doubt, pass.
var ambiguousPaths = []string{
	"/v1/feeds/x/segments/events",
	"/v1/feeds/x/segments/1/events",
	"/v1/feeds/x/segments/1/parts/events",
	"/metrics/",
	"/metrics/x",
}

// canonicalSamples are request paths as sent, canonical or not: every
// route example, and spellings of them an attacker could use to split one
// cache object into many or pass a segment to the origin per viewer.
func canonicalSamples() []string {
	out := []string{"/", "/a!$&'()*+,;=:@b", "/.a", "/a.", "/..a", "/a..b", "/a/...", "/v1/feeds/~x"}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, rt := range allRoutes() {
		for _, p := range routeExamples(rt.Pattern) {
			add(p)
			i := strings.LastIndexByte(p, '/')
			last := p[i+1:]
			if last != "" {
				c := last[0]
				add(p[:i+1] + fmt.Sprintf("%%%02X", c) + last[1:]) // "/segments/%31…"
				add(p[:i+1] + fmt.Sprintf("%%%02x", c) + last[1:]) // lower-case hex
				add(p[:i] + "%2F" + last)
				add(p[:i] + "%2f" + last)
			}
			add(p + "/")
			add(p + "/.")
			add(p + "/..")
			add(p[:i] + "/." + p[i:])
			add(p[:i] + "/x/.." + p[i:])
			add(p[:i] + "/" + p[i:])
			add("/" + p)
			add(p[:i] + "\\" + p[i+1:])
			add(p + "\"")
			add(p + "{")
			add(p + "é")
			add(p + "%")
		}
	}
	return out
}

// expressibleInRules reports whether p breaks the canonical rule only in
// ways that Cloudflare's Rules language can state without regular
// expressions: percent-encoding, a backslash, empty or dot segments. Other
// bytes that a path may not carry unencoded are left to the origin.
func expressibleInRules(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != '%' && c != '\\' && !origin.CanonicalPath("/"+string(c)) && c != '/' && c != '.' {
			return false
		}
	}
	return true
}

func cacheable(c cdn.EdgeClass) bool {
	return c == cdn.EdgeSegment || c == cdn.EdgeShort || c == cdn.EdgeStatic
}

// ---------------------------------------------------------------------------
// Timing the edges must allow, from the Go defaults.

func keepalive() time.Duration { return segmenter.Defaults().Keepalive }

// checkReadTimeout checks an edge's origin read timeout (the longest wait
// for the first byte and between two reads).
func checkReadTimeout(t *testing.T, what string, d time.Duration) {
	t.Helper()
	if least := 2 * keepalive(); d < least {
		t.Errorf("%s = %s, want at least twice the keepalive (%s)", what, d, least)
	}
	// The origin holds an early segment request's headers, and an
	// unfinished part, this long before the first byte.
	if hold := max(origin.Defaults().EarlyHold, segmenter.Defaults().PartLength); d <= hold {
		t.Errorf("%s = %s, want more than the origin's hold of %s", what, d, hold)
	}
}

// originIdleTimeout returns the IdleTimeout of the origin's public
// listener.
func originIdleTimeout(*testing.T) time.Duration { return app.PublicIdleTimeout }
