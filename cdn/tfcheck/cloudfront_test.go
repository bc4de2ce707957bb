package tfcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"marquee/cdn"
	"marquee/internal/testenv"
	"marquee/origin"
)

// cloudfrontVars are sample values of the CloudFront module's required
// variables.
var cloudfrontVars = map[string]cty.Value{
	"origin_domain_name": cty.StringVal("origin.example.com"),
}

// cfBehaviour is one cache behaviour of the distribution.
type cfBehaviour struct {
	pattern               string // "" for the default behaviour
	cachePolicy           string // reference, e.g. "aws_cloudfront_cache_policy.segments"
	originRequestPolicy   string
	responseHeadersPolicy string
	compress              bool
	allowedMethods        []string
	cachedMethods         []string
	viewerRequestFunction string
}

// cloudFrontPolicyClasses are the edge classes a behaviour may serve, by
// its cache policy.
var cloudFrontPolicyClasses = map[string][]cdn.EdgeClass{
	"aws_cloudfront_cache_policy.segments":              {cdn.EdgeSegment},
	"aws_cloudfront_cache_policy.public":                {cdn.EdgeShort, cdn.EdgeStatic},
	"data.aws_cloudfront_cache_policy.caching_disabled": {cdn.EdgePass, cdn.EdgeDeny},
}

func TestCloudFront(t *testing.T) {
	m := loadModule(t, tfCloudFront, cloudfrontVars)
	dist := m.resource(t, "aws_cloudfront_distribution", "this")

	t.Run("origin timeouts", func(t *testing.T) {
		origins := blocks(dist.Body, "origin")
		if len(origins) != 1 {
			t.Fatalf("%d origins, want 1", len(origins))
		}
		co := blocks(origins[0].Body, "custom_origin_config")
		if len(co) != 1 {
			t.Fatalf("origin has %d custom_origin_config blocks, want 1", len(co))
		}
		read := time.Duration(m.int(t, m.attr(t, co[0].Body, "origin_read_timeout"))) * time.Second
		checkReadTimeout(t, "origin_read_timeout", read)
		if read > 180*time.Second {
			t.Errorf("origin_read_timeout = %s, above CloudFront's maximum of 180s", read)
		}
		// The variable refuses what would break streams.
		secs := int64(2 * keepalive() / time.Second)
		if m.validates(t, "origin_read_timeout", cty.NumberIntVal(secs-1)) {
			t.Errorf("variable origin_read_timeout accepts %ds, less than twice the keepalive", secs-1)
		}
		if !m.validates(t, "origin_read_timeout", cty.NumberIntVal(secs)) {
			t.Errorf("variable origin_read_timeout refuses %ds, twice the keepalive", secs)
		}
		// CloudFront must close an idle origin connection before the origin
		// does, or it may reuse one the origin is closing.
		keep := time.Duration(m.int(t, m.attr(t, co[0].Body, "origin_keepalive_timeout"))) * time.Second
		if idle := originIdleTimeout(t); keep <= 0 || keep >= idle {
			t.Errorf("origin_keepalive_timeout = %s, want above 0 and below the origin's IdleTimeout %s", keep, idle)
		}
		if m.validates(t, "origin_keepalive_timeout", cty.NumberIntVal(int64(originIdleTimeout(t)/time.Second))) {
			t.Errorf("variable origin_keepalive_timeout accepts the origin's idle timeout")
		}
	})

	behaviours := m.cloudFrontBehaviours(t, dist)

	t.Run("cache policies", func(t *testing.T) {
		p := cdn.DefaultPolicy()
		for _, b := range m.resources("aws_cloudfront_cache_policy") {
			ref := "aws_cloudfront_cache_policy." + b.Labels[1]
			classes, ok := cloudFrontPolicyClasses[ref]
			if !ok {
				t.Errorf("%s: a cache policy this test does not know; add it to cloudFrontPolicyClasses", ref)
				continue
			}
			if !slices.ContainsFunc(classes, cacheable) {
				continue
			}
			params := blocks(b.Body, "parameters_in_cache_key_and_forwarded_to_origin")
			if len(params) != 1 {
				t.Fatalf("%s: %d parameters blocks", ref, len(params))
			}
			checkNothingPerViewer(t, m, ref, params[0].Body)
			if got := m.int(t, m.attr(t, b.Body, "min_ttl")); got != 0 {
				t.Errorf("%s: min_ttl = %d, want 0 so the origin can say no-store", ref, got)
			}
			// The origin's TTLs rule: the default applies only to a
			// response without Cache-Control, and the maximum must not cut
			// any TTL the origin sends.
			shortest := min(p.DescriptorMaxAge, p.StaticMaxAge)
			longest := max(p.ImmutableMaxAge, p.StaticMaxAge)
			if got, limit := m.int(t, m.attr(t, b.Body, "default_ttl")), int64(shortest/time.Second); got > limit {
				t.Errorf("%s: default_ttl = %d, want at most the shortest origin TTL (%d)", ref, got, limit)
			}
			if got, want := m.int(t, m.attr(t, b.Body, "max_ttl")), int64(longest/time.Second); got < want {
				t.Errorf("%s: max_ttl = %d, want at least the origin's longest TTL %d", ref, got, want)
			}
			if slices.Contains(classes, cdn.EdgeSegment) {
				for _, k := range []string{"enable_accept_encoding_gzip", "enable_accept_encoding_brotli"} {
					if m.bool(t, m.attr(t, params[0].Body, k)) {
						t.Errorf("%s: %s = true; streams must never be compressed", ref, k)
					}
				}
			}
		}
		d := m.data(t, "aws_cloudfront_cache_policy", "caching_disabled")
		if got := m.str(t, m.attr(t, d.Body, "name")); got != "Managed-CachingDisabled" {
			t.Errorf("data.aws_cloudfront_cache_policy.caching_disabled name = %q", got)
		}
	})

	t.Run("behaviours", func(t *testing.T) {
		seenCacheable := ""
		for _, b := range behaviours {
			name := b.pattern
			if name == "" {
				name = "default"
			}
			classes, ok := cloudFrontPolicyClasses[b.cachePolicy]
			if !ok {
				t.Errorf("behaviour %s: cache policy %q unknown to this test", name, b.cachePolicy)
				continue
			}
			isCacheable := slices.ContainsFunc(classes, cacheable)
			if b.pattern != "" {
				if isCacheable {
					seenCacheable = b.pattern
				} else if seenCacheable != "" {
					t.Errorf("uncached behaviour %s comes after cached behaviour %s; uncached ones go first so overlaps are never cached", b.pattern, seenCacheable)
				}
			}
			for _, meth := range b.cachedMethods {
				if meth != "GET" && meth != "HEAD" {
					t.Errorf("behaviour %s caches %s", name, meth)
				}
			}
			for _, meth := range b.allowedMethods {
				if !slices.Contains([]string{"GET", "HEAD", "OPTIONS"}, meth) {
					t.Errorf("behaviour %s allows %s; marquee answers only GET, HEAD and OPTIONS", name, meth)
				}
			}
			if b.responseHeadersPolicy != "aws_cloudfront_response_headers_policy.cors" {
				t.Errorf("behaviour %s: response headers policy %q, want the CORS policy", name, b.responseHeadersPolicy)
			}
			orp := m.originRequestPolicy(t, b.originRequestPolicy)
			headers := orp.headers
			if isCacheable && (len(headers) > 0 || orp.headerBehavior != "none") {
				t.Errorf("behaviour %s caches but forwards headers %s %q to the origin", name, orp.headerBehavior, headers)
			}
			if orp.cookieBehavior != "none" || orp.queryBehavior != "none" {
				t.Errorf("behaviour %s forwards cookies %q / query strings %q", name, orp.cookieBehavior, orp.queryBehavior)
			}
			if !isCacheable && orp.headerBehavior != "none" && !(orp.headerBehavior == "whitelist" && slices.Equal(headers, []string{"Last-Event-ID"})) {
				t.Errorf("behaviour %s forwards headers %s %q; only Last-Event-ID may be forwarded", name, orp.headerBehavior, headers)
			}
		}
	})

	t.Run("routes", func(t *testing.T) {
		for _, r := range allRoutes() {
			for _, p := range routeExamples(r.Pattern) {
				var matched []cfBehaviour
				for _, b := range behaviours[:len(behaviours)-1] {
					if cloudFrontMatch(b.pattern, p) {
						matched = append(matched, b)
					}
				}
				if len(matched) > 1 {
					t.Errorf("%s (%s) matches %d behaviours (%s, %s, ...), want at most 1", p, r.Pattern, len(matched), matched[0].pattern, matched[1].pattern)
				}
				b := behaviours[len(behaviours)-1] // the default
				if len(matched) > 0 {
					b = matched[0]
				}
				if !slices.Contains(cloudFrontPolicyClasses[b.cachePolicy], r.Edge) {
					t.Errorf("%s (%s, class %s) is served by behaviour %q with cache policy %s", p, r.Pattern, r.Edge, b.pattern, b.cachePolicy)
				}
				if r.Stream && b.compress {
					t.Errorf("%s (%s) is a stream served by behaviour %q with compress = true", p, r.Pattern, b.pattern)
				}
				if r.Edge == cdn.EdgeDeny && b.viewerRequestFunction != "aws_cloudfront_function.deny_admin" {
					t.Errorf("%s (%s) is admin but behaviour %q does not deny it at the edge", p, r.Pattern, b.pattern)
				}
				if r.Edge != cdn.EdgeDeny && b.viewerRequestFunction != "aws_cloudfront_function.canonical_path" {
					t.Errorf("%s (%s) is served by behaviour %q, which does not refuse non-canonical paths (viewer request function %q)", p, r.Pattern, b.pattern, b.viewerRequestFunction)
				}
				if r.Edge == cdn.EdgePass && r.Stream {
					orp := m.originRequestPolicy(t, b.originRequestPolicy)
					if !slices.Contains(orp.headers, "Last-Event-ID") {
						t.Errorf("%s (%s) is direct mode but Last-Event-ID does not reach the origin", p, r.Pattern)
					}
				}
			}
		}
		for _, p := range ambiguousPaths {
			b := behaviours[len(behaviours)-1]
			for _, o := range behaviours[:len(behaviours)-1] {
				if cloudFrontMatch(o.pattern, p) {
					b = o
					break
				}
			}
			if slices.ContainsFunc(cloudFrontPolicyClasses[b.cachePolicy], cacheable) {
				t.Errorf("%s: no route, but served by cached behaviour %q; uncached behaviours must come first", p, b.pattern)
			}
		}
	})

	t.Run("deny function", func(t *testing.T) {
		f := m.resource(t, "aws_cloudfront_function", "deny_admin")
		code := m.str(t, m.attr(t, f.Body, "code"))
		for _, want := range []string{"statusCode: 404", "'cache-control': { value: 'no-store' }"} {
			if !strings.Contains(code, want) {
				t.Errorf("deny_admin function code lacks %q", want)
			}
		}
		if !m.bool(t, m.attr(t, f.Body, "publish")) {
			t.Errorf("deny_admin function is not published")
		}
	})

	t.Run("canonical path function", func(t *testing.T) {
		f := m.resource(t, "aws_cloudfront_function", "canonical_path")
		if !m.bool(t, m.attr(t, f.Body, "publish")) || m.str(t, m.attr(t, f.Body, "runtime")) != "cloudfront-js-2.0" {
			t.Errorf("canonical_path function: not published, or not cloudfront-js-2.0")
		}
		for _, b := range behaviours {
			if b.pattern != "/metrics*" && b.viewerRequestFunction != "aws_cloudfront_function.canonical_path" {
				t.Errorf("behaviour %q does not run the canonical_path function", b.pattern)
			}
		}
		samples := canonicalSamples()
		got := runCloudFrontFunction(t, m.str(t, m.attr(t, f.Body, "code")), samples)
		for i, p := range samples {
			want := 0 // the request goes on
			if !origin.CanonicalPath(p) {
				want = http.StatusBadRequest
			}
			if got[i].Status != want {
				t.Errorf("%q: function answers %d, want %d (origin.CanonicalPath %v)", p, got[i].Status, want, want == 0)
			}
			if got[i].Status != 0 && got[i].CacheControl != "no-store" {
				t.Errorf("%q: refused with cache-control %q, want no-store", p, got[i].CacheControl)
			}
		}
	})

	t.Run("CORS", func(t *testing.T) {
		h := http.Header{}
		cdn.Common(h)
		pol := m.resource(t, "aws_cloudfront_response_headers_policy", "cors")
		cors := blocks(pol.Body, "cors_config")
		if len(cors) != 1 {
			t.Fatalf("%d cors_config blocks", len(cors))
		}
		items := func(name string) []string {
			bs := blocks(cors[0].Body, name)
			if len(bs) != 1 {
				t.Fatalf("cors_config has %d %s blocks", len(bs), name)
			}
			return m.strings(t, m.attr(t, bs[0].Body, "items"))
		}
		if got, want := items("access_control_allow_origins"), []string{h.Get("Access-Control-Allow-Origin")}; !slices.Equal(got, want) {
			t.Errorf("allowed origins %q, want %q as the origin sends", got, want)
		}
		if got, want := items("access_control_expose_headers"), strings.Split(h.Get("Access-Control-Expose-Headers"), ", "); !slices.Equal(got, want) {
			t.Errorf("exposed headers %q, want %q as the origin sends", got, want)
		}
		if m.bool(t, m.attr(t, cors[0].Body, "access_control_allow_credentials")) {
			t.Errorf("CORS allows credentials; marquee never uses any")
		}
		if m.bool(t, m.attr(t, cors[0].Body, "origin_override")) {
			t.Errorf("CORS origin_override = true; the origin's own headers must win")
		}
	})

	t.Run("client mode", func(t *testing.T) {
		checkClientMode(t, m, "stream")
	})
}

// checkNothingPerViewer checks a cache or origin request policy's
// cookies_config, headers_config and query_strings_config.
func checkNothingPerViewer(t *testing.T, m *tfModule, ref string, body *hclsyntax.Body) {
	t.Helper()
	for _, c := range []struct{ block, attr string }{
		{"cookies_config", "cookie_behavior"},
		{"headers_config", "header_behavior"},
		{"query_strings_config", "query_string_behavior"},
	} {
		bs := blocks(body, c.block)
		if len(bs) != 1 {
			t.Errorf("%s: %d %s blocks", ref, len(bs), c.block)
			continue
		}
		if got := m.str(t, m.attr(t, bs[0].Body, c.attr)); got != "none" {
			t.Errorf("%s: %s = %q, want none: nothing per viewer in the cache key", ref, c.attr, got)
		}
	}
}

type cfOriginRequestPolicy struct {
	cookieBehavior, headerBehavior, queryBehavior string
	headers                                       []string
}

func (m *tfModule) originRequestPolicy(t *testing.T, ref string) cfOriginRequestPolicy {
	t.Helper()
	name, ok := strings.CutPrefix(ref, "aws_cloudfront_origin_request_policy.")
	if !ok {
		t.Fatalf("origin request policy %q: want one of this module's aws_cloudfront_origin_request_policy", ref)
	}
	b := m.resource(t, "aws_cloudfront_origin_request_policy", name)
	one := func(typ string) *hclsyntax.Body {
		bs := blocks(b.Body, typ)
		if len(bs) != 1 {
			t.Fatalf("%s: %d %s blocks", ref, len(bs), typ)
		}
		return bs[0].Body
	}
	var p cfOriginRequestPolicy
	p.cookieBehavior = m.str(t, m.attr(t, one("cookies_config"), "cookie_behavior"))
	p.queryBehavior = m.str(t, m.attr(t, one("query_strings_config"), "query_string_behavior"))
	hc := one("headers_config")
	p.headerBehavior = m.str(t, m.attr(t, hc, "header_behavior"))
	for _, h := range blocks(hc, "headers") {
		p.headers = append(p.headers, m.strings(t, m.attr(t, h.Body, "items"))...)
	}
	return p
}

// cloudFrontBehaviours returns the ordered behaviours, then the default one.
func (m *tfModule) cloudFrontBehaviours(t *testing.T, dist *hclsyntax.Block) []cfBehaviour {
	t.Helper()
	read := func(b *hclsyntax.Block) cfBehaviour {
		var out cfBehaviour
		if _, ok := b.Body.Attributes["path_pattern"]; ok {
			out.pattern = m.str(t, m.attr(t, b.Body, "path_pattern"))
		}
		out.cachePolicy = m.ref(t, b.Body, "cache_policy_id")
		out.originRequestPolicy = m.ref(t, b.Body, "origin_request_policy_id")
		out.responseHeadersPolicy = m.ref(t, b.Body, "response_headers_policy_id")
		if _, ok := b.Body.Attributes["compress"]; ok {
			out.compress = m.bool(t, m.attr(t, b.Body, "compress"))
		}
		out.allowedMethods = m.strings(t, m.attr(t, b.Body, "allowed_methods"))
		out.cachedMethods = m.strings(t, m.attr(t, b.Body, "cached_methods"))
		for _, fa := range blocks(b.Body, "function_association") {
			if m.str(t, m.attr(t, fa.Body, "event_type")) == "viewer-request" {
				out.viewerRequestFunction = m.ref(t, fa.Body, "function_arn")
			}
		}
		return out
	}
	var out []cfBehaviour
	for _, b := range blocks(dist.Body, "ordered_cache_behavior") {
		out = append(out, read(b))
	}
	if len(blocks(dist.Body, "dynamic")) > 0 {
		for _, d := range blocks(dist.Body, "dynamic") {
			if d.Labels[0] == "ordered_cache_behavior" || d.Labels[0] == "default_cache_behavior" {
				t.Fatalf("dynamic %s blocks are not checked by this test; write them out", d.Labels[0])
			}
		}
	}
	def := blocks(dist.Body, "default_cache_behavior")
	if len(def) != 1 {
		t.Fatalf("%d default_cache_behavior blocks", len(def))
	}
	return append(out, read(def[0]))
}

// cloudFrontMatch reports whether a CloudFront path pattern matches path:
// "*" matches any run of characters, "/" included, "?" exactly one, and
// the rest literally (case-sensitive). A pattern without a leading "/"
// means the same as with one.
func cloudFrontMatch(pattern, path string) bool {
	if !strings.HasPrefix(pattern, "/") {
		pattern = "/" + pattern
	}
	var p, kinds []rune
	for _, r := range pattern {
		p = append(p, r)
		if r == '*' || r == '?' {
			kinds = append(kinds, r)
		} else {
			kinds = append(kinds, 0)
		}
	}
	return globMatch(p, kinds, []rune(path))
}

// cfFunctionResult is what a viewer-request function did with one request:
// Status 0 when it passed the request on, else the status it answered
// with and that answer's cache-control.
type cfFunctionResult struct {
	Status       int    `json:"status"`
	CacheControl string `json:"cacheControl"`
}

// runCloudFrontFunction runs the handler of a CloudFront Function's code
// with node for a GET of each uri, as CloudFront would at viewer request.
// Node runs a superset of the cloudfront-js-2.0 runtime's language.
func runCloudFrontFunction(t *testing.T, code string, uris []string) []cfFunctionResult {
	t.Helper()
	return runCloudFrontFunctionAt(t, code, uris, time.Time{})
}

// runCloudFrontFunctionAt is runCloudFrontFunction with the function's
// clock (Date.now) at now; the zero time leaves the real clock.
func runCloudFrontFunctionAt(t *testing.T, code string, uris []string, now time.Time) []cfFunctionResult {
	t.Helper()
	node := testenv.NeedProgram(t, "node", "nodejs")
	clock := ""
	if !now.IsZero() {
		clock = fmt.Sprintf("Date.now = () => %d;\n", now.UnixMilli())
	}
	driver := clock + code + `
const uris = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = uris.map((uri) => {
  const r = handler({ version: "1.0", context: { eventType: "viewer-request" }, viewer: { ip: "192.0.2.1" },
    request: { method: "GET", uri: uri, querystring: {}, headers: {}, cookies: {} } });
  if (r && r.statusCode) return { status: r.statusCode, cacheControl: ((r.headers || {})["cache-control"] || {}).value || "" };
  if (!r || r.uri !== uri) throw new Error("the function changed the request for " + uri);
  return { status: 0 };
});
process.stdout.write(JSON.stringify(out));
`
	in, err := json.Marshal(uris)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "-e", driver)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var out []cfFunctionResult
	if err := json.Unmarshal(outb, &out); err != nil || len(out) != len(uris) {
		t.Fatalf("node output %q: %v", outb, err)
	}
	return out
}
