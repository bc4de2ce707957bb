package tfcheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestEdgeMatchers(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"/v1/feeds/*/segments/*", "/v1/feeds/a/segments/1", true},
		{"/v1/feeds/*/segments/*", "/v1/feeds/a/segments/1/parts/2", true},
		{"/v1/feeds/*/events", "/v1/feeds/events", false},
		{"/v1/feeds/*/events", "/v1/feeds/a/events", true},
		{"v1/feeds/*/events", "/v1/feeds/a/events", true},
		{"/metrics*", "/metrics", true},
		{"/healthz", "/healthz/", false},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"/A", "/a", false},
	} {
		if got := cloudFrontMatch(tc.pattern, tc.path); got != tc.want {
			t.Errorf("cloudFrontMatch(%q, %q) = %v", tc.pattern, tc.path, got)
		}
	}
	f := map[string]string{"http.host": "h", "http.request.uri.path": "/v1/feeds/a/segments/1"}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`http.host eq "h"`, true},
		{`http.host == "h" && http.request.uri.path ne "/x"`, true},
		{`http.request.uri.path strict wildcard "/v1/feeds/*/segments/*"`, true},
		{`http.request.uri.path strict wildcard "/V1/feeds/*"`, false},
		{`http.request.uri.path wildcard "/V1/FEEDS/*"`, true},
		{`http.request.uri.path strict wildcard "/v1/feeds/*/segments/\*"`, false},
		{`http.request.uri.path in {"/a" "/v1/feeds/a/segments/1"}`, true},
		{`not http.host eq "h" or http.host eq "h"`, true},
		{`not (http.host eq "h" or http.host eq "h")`, false},
		{`http.host eq "x" or http.host eq "h" and http.host eq "x"`, false},
		{`(http.host eq "x" or http.host eq "h") and not http.host eq "x"`, true},
		{`http.host eq r"h"`, true},
		{`http.request.uri.path contains "/segments/"`, true},
		{`http.request.uri.path contains "%"`, false},
		{`http.request.uri.path contains "\\"`, false},
	} {
		e, err := parseCloudflareExpr(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got, err := e.eval(f); err != nil || got != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		`http.request.uri.path matches "^/x$"`, // not on every plan, and not modelled here
		`http.host eq "h" xor http.host eq "h"`,
		`http.host eq`,
		`(http.host eq "h"`,
	} {
		if _, err := parseCloudflareExpr(bad); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
	if _, err := mustParse(`http.cookie eq "x"`).eval(f); err == nil {
		t.Errorf("a field the test does not set evaluated without error")
	}
}

func mustParse(s string) cfExpr {
	e, err := parseCloudflareExpr(s)
	if err != nil {
		panic(err)
	}
	return e
}

// ---------------------------------------------------------------------------
// Cloudflare's Rules language: the subset the module uses. Anything else is
// an error, so the module cannot grow an expression this test cannot judge.

type cfExpr interface {
	eval(fields map[string]string) (bool, error)
}

type (
	cfAnd struct{ l, r cfExpr }
	cfOr  struct{ l, r cfExpr }
	cfNot struct{ x cfExpr }
	cfCmp struct {
		field, op string
		values    []string
	}
)

func (e cfAnd) eval(f map[string]string) (bool, error) {
	l, err := e.l.eval(f)
	if err != nil {
		return false, err
	}
	r, err := e.r.eval(f)
	return l && r, err
}

func (e cfOr) eval(f map[string]string) (bool, error) {
	l, err := e.l.eval(f)
	if err != nil {
		return false, err
	}
	r, err := e.r.eval(f)
	return l || r, err
}

func (e cfNot) eval(f map[string]string) (bool, error) {
	x, err := e.x.eval(f)
	return !x, err
}

func (e cfCmp) eval(f map[string]string) (bool, error) {
	v, ok := f[e.field]
	if !ok {
		return false, fmt.Errorf("field %s has no value in this check", e.field)
	}
	switch e.op {
	case "eq":
		return v == e.values[0], nil
	case "ne":
		return v != e.values[0], nil
	case "in":
		return slices.Contains(e.values, v), nil
	case "contains":
		return strings.Contains(v, e.values[0]), nil
	case "strict wildcard":
		return cloudflareWildcard(e.values[0], v, false), nil
	case "wildcard":
		return cloudflareWildcard(e.values[0], v, true), nil
	}
	return false, fmt.Errorf("operator %s", e.op)
}

// cloudflareWildcard reports whether a wildcard pattern matches all of s:
// "*" matches any run of characters, "/" included; a backslash makes the
// next character literal. wildcard is case-insensitive, strict wildcard not.
func cloudflareWildcard(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	var p, kinds []rune
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch {
		case rs[i] == '\\' && i+1 < len(rs):
			i++
			p, kinds = append(p, rs[i]), append(kinds, 0)
		case rs[i] == '*':
			p, kinds = append(p, '*'), append(kinds, '*')
		default:
			p, kinds = append(p, rs[i]), append(kinds, 0)
		}
	}
	return globMatch(p, kinds, []rune(s))
}

// globMatch matches pattern against all of s. kinds[i] is '*' (any run of
// characters) or '?' (one character) where pattern[i] is a wildcard, and 0
// where it is literal.
func globMatch(pattern, kinds, s []rune) bool {
	// Two pointers, backtracking to the last "*".
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && kinds[pi] == '?':
			pi++
			si++
		case pi < len(pattern) && kinds[pi] == 0 && pattern[pi] == s[si]:
			pi++
			si++
		case pi < len(pattern) && kinds[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && kinds[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

type cfToken struct {
	kind string // "ident", "string", or the punctuation itself
	text string
}

func lexCloudflare(src string) ([]cfToken, error) {
	var out []cfToken
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "==") || strings.HasPrefix(src[i:], "!=") ||
			strings.HasPrefix(src[i:], "&&") || strings.HasPrefix(src[i:], "||"):
			out = append(out, cfToken{kind: src[i : i+2]})
			i += 2
		case strings.ContainsRune("(){}!,", rune(c)):
			out = append(out, cfToken{kind: string(c)})
			i++
		case c == '"' || (c == 'r' && i+1 < len(src) && src[i+1] == '"'):
			raw := c == 'r'
			if raw {
				i++
			}
			var b strings.Builder
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				if !raw && src[j] == '\\' && j+1 < len(src) {
					// \" and \\ are escapes of the string; others (\*) are
					// kept for the wildcard pattern to interpret.
					if src[j+1] == '"' || src[j+1] == '\\' {
						j++
					} else {
						b.WriteByte('\\')
						j++
					}
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, cfToken{kind: "string", text: b.String()})
			i = j + 1
		case c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'):
			j := i
			for j < len(src) && (src[j] == '_' || src[j] == '.' || (src[j] >= 'a' && src[j] <= 'z') || (src[j] >= 'A' && src[j] <= 'Z') || (src[j] >= '0' && src[j] <= '9')) {
				j++
			}
			out = append(out, cfToken{kind: "ident", text: src[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q", c)
		}
	}
	return out, nil
}

type cfParser struct {
	toks []cfToken
	pos  int
}

func parseCloudflareExpr(src string) (cfExpr, error) {
	toks, err := lexCloudflare(src)
	if err != nil {
		return nil, err
	}
	p := &cfParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %v", p.toks[p.pos])
	}
	return e, nil
}

func (p *cfParser) peek() cfToken {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return cfToken{kind: "end"}
}

func (p *cfParser) keyword(words ...string) bool {
	t := p.peek()
	for _, w := range words {
		if (t.kind == "ident" && t.text == w) || t.kind == w {
			p.pos++
			return true
		}
	}
	return false
}

func (p *cfParser) or() (cfExpr, error) {
	l, err := p.and()
	for err == nil && p.keyword("or", "||") {
		var r cfExpr
		r, err = p.and()
		l = cfOr{l, r}
	}
	return l, err
}

func (p *cfParser) and() (cfExpr, error) {
	l, err := p.not()
	for err == nil && p.keyword("and", "&&") {
		var r cfExpr
		r, err = p.not()
		l = cfAnd{l, r}
	}
	return l, err
}

func (p *cfParser) not() (cfExpr, error) {
	if p.keyword("not", "!") {
		x, err := p.not()
		return cfNot{x}, err
	}
	return p.primary()
}

func (p *cfParser) primary() (cfExpr, error) {
	if p.keyword("(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.keyword(")") {
			return nil, fmt.Errorf("missing )")
		}
		return e, nil
	}
	field := p.peek()
	if field.kind == "ident" && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == "(" {
		return p.call()
	}
	if field.kind != "ident" || !strings.Contains(field.text, ".") {
		return nil, fmt.Errorf("want a field, got %v", field)
	}
	p.pos++
	var op string
	switch {
	case p.keyword("eq", "=="):
		op = "eq"
	case p.keyword("ne", "!="):
		op = "ne"
	case p.keyword("in"):
		op = "in"
	case p.keyword("contains"):
		op = "contains"
	case p.keyword("wildcard"):
		op = "wildcard"
	case p.keyword("strict"):
		if !p.keyword("wildcard") {
			return nil, fmt.Errorf("strict without wildcard")
		}
		op = "strict wildcard"
	default:
		return nil, fmt.Errorf("operator %v after %s is not supported by this test", p.peek(), field.text)
	}
	cmp := cfCmp{field: field.text, op: op}
	if op == "in" {
		if !p.keyword("{") {
			return nil, fmt.Errorf("in without {")
		}
		for p.peek().kind == "string" {
			cmp.values = append(cmp.values, p.peek().text)
			p.pos++
		}
		if !p.keyword("}") {
			return nil, fmt.Errorf("in list not closed")
		}
		return cmp, nil
	}
	v := p.peek()
	if v.kind != "string" {
		return nil, fmt.Errorf("want a string after %s %s, got %v", field.text, op, v)
	}
	p.pos++
	cmp.values = []string{v.text}
	return cmp, nil
}
