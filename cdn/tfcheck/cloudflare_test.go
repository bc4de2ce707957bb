package tfcheck

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"marquee/cdn"
	"marquee/origin"
)

const (
	sampleHost = "live.example.com"

	// cloudflareReadTimeout is Cloudflare's default proxy read timeout (the
	// longest wait between two reads from the origin), per the
	// read_timeout description of the cloudflare_ruleset schema.
	cloudflareReadTimeout = 100 * time.Second
)

// cloudflareVars are sample values of the Cloudflare module's required
// variables.
var cloudflareVars = map[string]cty.Value{
	"zone_id":         cty.StringVal("0123456789abcdef0123456789abcdef"),
	"hostname":        cty.StringVal(sampleHost),
	"origin_hostname": cty.StringVal("origin.example.com"),
}

// cfRule is one rule of a Cloudflare ruleset, evaluated.
type cfRule struct {
	ref, action string
	src         string // the expression as written
	expr        cfExpr
	params      cty.Value
}

func TestCloudflare(t *testing.T) {
	m := loadModule(t, tfCloudflare, cloudflareVars)
	host := map[string]string{"http.host": sampleHost}
	fields := func(kv ...string) map[string]string {
		f := map[string]string{}
		for k, v := range host {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			f[kv[i]] = kv[i+1]
		}
		return f
	}

	t.Run("cache rules", func(t *testing.T) {
		rules := m.cloudflareRules(t, "http_request_cache_settings")
		byClass := map[cdn.EdgeClass]cfRule{}
		for _, r := range rules {
			class := cdn.EdgeClass(strings.TrimPrefix(r.ref, "marquee_"))
			if !slices.ContainsFunc(allRoutes(), func(rt cdn.Route) bool { return rt.Edge == class }) {
				t.Errorf("cache rule ref %q names no edge class of cdn/routes.go (want marquee_<class>)", r.ref)
				continue
			}
			if _, dup := byClass[class]; dup {
				t.Errorf("two cache rules for class %s", class)
			}
			byClass[class] = r
			if r.action != "set_cache_settings" {
				t.Errorf("%s: action %q", r.ref, r.action)
			}
			p := r.params
			if cacheable(class) {
				want := map[string]any{
					"cache":            true,
					"edge_ttl.mode":    "respect_origin",
					"browser_ttl.mode": "respect_origin",
					"serve_stale.disable_stale_while_updating":      true,
					"cache_key.custom_key.query_string.exclude.all": true,
					"cache_key.cache_by_device_type":                false,
				}
				for path, w := range want {
					if got := goValue(t, get(p, path)); got != w {
						t.Errorf("%s: %s = %v, want %v", r.ref, path, got, w)
					}
				}
				for _, path := range []string{
					"cache_key.custom_key.cookie", "cache_key.custom_key.header",
					"cache_key.custom_key.user", "cache_key.custom_key.host",
					"cache_key.custom_key.query_string.include",
					"edge_ttl.default", "edge_ttl.status_code_ttl", "browser_ttl.default",
				} {
					if v := get(p, path); !v.IsNull() {
						t.Errorf("%s: %s is set (%#v); the cache key is the path alone and the TTL the origin's", r.ref, path, v)
					}
				}
				rt := cloudflareReadTimeout
				if v := get(p, "read_timeout"); !v.IsNull() {
					rt = time.Duration(m.int(t, v)) * time.Second
				}
				checkReadTimeout(t, r.ref+" read timeout", rt)
			} else {
				if got := goValue(t, get(p, "cache")); got != false {
					t.Errorf("%s: cache = %v, want false", r.ref, got)
				}
			}
		}
		for _, rt := range allRoutes() {
			for _, p := range routeExamples(rt.Pattern) {
				var matched []string
				for _, r := range rules {
					if eval(t, r, fields("http.request.uri.path", p)) {
						matched = append(matched, r.ref)
					}
				}
				if want := []string{"marquee_" + string(rt.Edge)}; !slices.Equal(matched, want) {
					t.Errorf("%s (%s, class %s) matches cache rules %q, want %q", p, rt.Pattern, rt.Edge, matched, want)
				}
				other := map[string]string{"http.host": "other.example.com", "http.request.uri.path": p}
				for _, r := range rules {
					if eval(t, r, other) {
						t.Errorf("%s: matches %s on another hostname; rules must be scoped to the hostname", p, r.ref)
					}
				}
			}
		}
		for _, p := range ambiguousPaths {
			var matched []string
			for _, r := range rules {
				if eval(t, r, fields("http.request.uri.path", p)) {
					matched = append(matched, r.ref)
				}
			}
			if len(matched) != 1 || cacheable(cdn.EdgeClass(strings.TrimPrefix(matched[0], "marquee_"))) {
				t.Errorf("%s: no route, matches cache rules %q; want exactly one, uncached", p, matched)
			}
		}
	})

	t.Run("compression", func(t *testing.T) {
		rules := m.cloudflareRules(t, "http_response_compression")
		n := 0
		for _, r := range rules {
			if !eval(t, r, fields("http.response.content_type.media_type", "text/event-stream")) {
				continue
			}
			n++
			algs := get(r.params, "algorithms")
			if r.action != "compress_response" || algs.IsNull() || algs.LengthInt() != 1 || goValue(t, get(algs.Index(cty.NumberIntVal(0)), "name")) != "none" {
				t.Errorf("%s matches text/event-stream but does not turn compression off", r.ref)
			}
		}
		if n == 0 {
			t.Errorf("no compression rule turns compression off for text/event-stream")
		}
		for _, r := range rules {
			if eval(t, r, fields("http.response.content_type.media_type", "application/json")) {
				t.Errorf("%s turns compression off for JSON too", r.ref)
			}
		}
	})

	t.Run("no rewriting", func(t *testing.T) {
		rules := m.cloudflareRules(t, "http_config_settings")
		for _, rt := range allRoutes() {
			for _, p := range routeExamples(rt.Pattern) {
				ok := false
				for _, r := range rules {
					if r.action == "set_config" && eval(t, r, fields("http.request.uri.path", p)) &&
						goValue(t, get(r.params, "rocket_loader")) == false &&
						goValue(t, get(r.params, "email_obfuscation")) == false &&
						goValue(t, get(r.params, "automatic_https_rewrites")) == false {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s (%s): no configuration rule turns response rewriting off", p, rt.Pattern)
				}
			}
		}
	})

	// paths sets the path fields of a request: the raw path as sent, and
	// the one Cloudflare's URL normalization would give rules (the same for
	// a canonical path; these checks do not depend on it otherwise).
	paths := func(p string) map[string]string {
		return fields("http.request.uri.path", p, "raw.http.request.uri.path", p)
	}

	t.Run("admin denied", func(t *testing.T) {
		rules := m.cloudflareRules(t, "http_request_firewall_custom")
		for _, rt := range allRoutes() {
			for _, p := range routeExamples(rt.Pattern) {
				blocked := false
				for _, r := range rules {
					if r.action == "block" && eval(t, r, paths(p)) {
						blocked = true
					}
				}
				if want := rt.Edge == cdn.EdgeDeny; blocked != want {
					t.Errorf("%s (%s, class %s): blocked = %v, want %v", p, rt.Pattern, rt.Edge, blocked, want)
				}
			}
		}
	})

	t.Run("non-canonical paths blocked", func(t *testing.T) {
		var rule *cfRule
		for _, r := range m.cloudflareRules(t, "http_request_firewall_custom") {
			if r.ref == "marquee_canonical_path" {
				rule = &r
			}
		}
		if rule == nil {
			t.Fatal("no custom firewall rule marquee_canonical_path")
		}
		if rule.action != "block" {
			t.Errorf("marquee_canonical_path: action %q, want block", rule.action)
		}
		if src := strings.ReplaceAll(rule.src, "raw.http.request.uri.path", ""); src == rule.src || strings.Contains(src, "uri.path") {
			t.Errorf("marquee_canonical_path must judge the raw path (raw.http.request.uri.path) alone: Cloudflare's URL normalization would hide what it looks for")
		}
		for _, p := range canonicalSamples() {
			canonical := origin.CanonicalPath(p)
			blocked := eval(t, *rule, paths(p))
			switch {
			case blocked && canonical:
				t.Errorf("%q is canonical (the origin serves it) but is blocked", p)
			case !blocked && !canonical && expressibleInRules(p):
				t.Errorf("%q is not canonical (the origin refuses it) but is not blocked", p)
			}
			other := map[string]string{"http.host": "other.example.com", "http.request.uri.path": p, "raw.http.request.uri.path": p}
			if eval(t, *rule, other) {
				t.Errorf("%q: blocked on another hostname; rules must be scoped to the hostname", p)
			}
		}
	})

	t.Run("variables", func(t *testing.T) {
		if m.validates(t, "proxy_read_timeout", cty.NumberIntVal(int64(2*keepalive()/time.Second)-1)) {
			t.Errorf("variable proxy_read_timeout accepts less than twice the keepalive")
		}
		if !m.validates(t, "client_mode", cty.StringVal("stream")) || m.validates(t, "client_mode", cty.StringVal("direct")) {
			t.Errorf("variable client_mode must accept stream and parts, and refuse direct (no edge needs it)")
		}
	})

	t.Run("client mode", func(t *testing.T) {
		checkClientMode(t, m, "parts")
	})
}

// cloudflareRules returns the rules of the module's cloudflare_ruleset of
// the given phase (none if the ruleset's count is 0 by default).
func (m *tfModule) cloudflareRules(t *testing.T, phase string) []cfRule {
	t.Helper()
	var found *hclsyntax.Block
	for _, b := range m.resources("cloudflare_ruleset") {
		if m.str(t, m.attr(t, b.Body, "phase")) != phase {
			continue
		}
		if found != nil {
			t.Fatalf("two rulesets of phase %s; a zone has one entry point per phase", phase)
		}
		found = b
	}
	if found == nil {
		t.Fatalf("no cloudflare_ruleset of phase %s", phase)
	}
	if _, ok := found.Body.Attributes["count"]; ok && m.int(t, m.attr(t, found.Body, "count")) == 0 {
		t.Fatalf("ruleset of phase %s is off by default", phase)
	}
	if got := m.str(t, m.attr(t, found.Body, "kind")); got != "zone" {
		t.Errorf("ruleset of phase %s: kind %q, want zone", phase, got)
	}
	rules := m.attr(t, found.Body, "rules")
	var out []cfRule
	for it := rules.ElementIterator(); it.Next(); {
		_, r := it.Element()
		var cr cfRule
		cr.ref, _ = goValue(t, get(r, "ref")).(string)
		cr.action, _ = goValue(t, get(r, "action")).(string)
		cr.params = get(r, "action_parameters")
		src, _ := goValue(t, get(r, "expression")).(string)
		if cr.ref == "" || cr.action == "" || src == "" {
			t.Fatalf("phase %s: a rule without ref, action or expression", phase)
		}
		e, err := parseCloudflareExpr(src)
		if err != nil {
			t.Fatalf("rule %s: %v in %q", cr.ref, err, src)
		}
		cr.expr, cr.src = e, src
		if !strings.HasPrefix(cr.ref, "marquee_") {
			t.Errorf("rule ref %q: want a marquee_ prefix", cr.ref)
		}
		out = append(out, cr)
	}
	return out
}

func eval(t *testing.T, r cfRule, fields map[string]string) bool {
	t.Helper()
	ok, err := r.expr.eval(fields)
	if err != nil {
		t.Fatalf("rule %s: %v", r.ref, err)
	}
	return ok
}

// checkClientMode checks the module's origin_environment output.
func checkClientMode(t *testing.T, m *tfModule, want string) {
	t.Helper()
	out := m.output(t, "origin_environment")
	got, _ := goValue(t, get(out, "MARQUEE_CLIENT_MODE")).(string)
	if got != want {
		t.Errorf("origin_environment MARQUEE_CLIENT_MODE = %q, want %q", got, want)
	}
	c := origin.Defaults()
	c.ClientMode = got
	if err := c.Validate(); err != nil {
		t.Errorf("origin refuses the module's client mode: %v", err)
	}
}
