package tfcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"marquee/cdn"
	"marquee/origin"
	"marquee/segmenter"
)

// TestRoutesMatchServers checks that PublicRoutes and AdminRoutes list
// exactly the GET routes the origin and cmd/marquee register, so that the
// edge checks of this package cover every route there is.
func TestRoutesMatchServers(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		routes []cdn.Route
	}{
		{"../../origin", cdn.PublicRoutes},
		{"../../cmd/marquee", cdn.AdminRoutes},
	} {
		got := registeredGETRoutes(t, tc.dir)
		var want []string
		for _, r := range tc.routes {
			want = append(want, r.Pattern)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s registers GET routes %q; the route table lists %q", tc.dir, got, want)
		}
	}
	// The sample paths below resolve to their own pattern with the real
	// matcher, so they exercise what they claim to.
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

// registeredGETRoutes returns the patterns of the "GET ..." routes that the
// non-test Go files of dir register with Handle or HandleFunc.
func registeredGETRoutes(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range parseGoDir(t, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && strings.HasPrefix(s, "GET ") {
				out = append(out, strings.TrimPrefix(s, "GET "))
			}
			return true
		})
	}
	return out
}

func parseGoDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// routeSamples are the values substituted for a pattern's wildcards. Feed
// names include marquee's own path words, the cases where edge patterns
// could confuse one route for another.
var routeSamples = map[string][]string{
	"feed": {"prices", "events", "segments", "snapshot", "parts", "upto", "metrics", "a-B_9"},
	"n":    {"0", "29466120"},
	"k":    {"0", "59"},
	"file": {"app.css", "dashboard.v2.js"},
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

// originIdleTimeout returns the IdleTimeout of cmd/marquee's public
// http.Server.
func originIdleTimeout(t *testing.T) time.Duration {
	t.Helper()
	var found []time.Duration
	for _, f := range parseGoDir(t, "../../cmd/marquee") {
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "IdleTimeout" {
				d, err := evalDuration(kv.Value)
				if err != nil {
					t.Fatalf("cmd/marquee IdleTimeout: %v", err)
				}
				found = append(found, d)
			}
			return true
		})
	}
	if len(found) != 1 {
		t.Fatalf("found %d IdleTimeout settings in cmd/marquee, want 1", len(found))
	}
	return found[0]
}

// evalDuration evaluates "N * time.Unit", "time.Unit * N" and "time.Unit".
func evalDuration(e ast.Expr) (time.Duration, error) {
	units := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}
	switch e := e.(type) {
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "time" {
			if u, ok := units[e.Sel.Name]; ok {
				return u, nil
			}
		}
	case *ast.BasicLit:
		if e.Kind == token.INT {
			n, err := strconv.ParseInt(e.Value, 0, 64)
			return time.Duration(n), err
		}
	case *ast.BinaryExpr:
		if e.Op == token.MUL {
			a, err := evalDuration(e.X)
			if err != nil {
				return 0, err
			}
			b, err := evalDuration(e.Y)
			return a * b, err
		}
	case *ast.ParenExpr:
		return evalDuration(e.X)
	}
	return 0, fmt.Errorf("cannot evaluate %T", e)
}
