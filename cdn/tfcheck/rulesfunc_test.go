package tfcheck

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// The functions of Cloudflare's Rules language that the token rules use,
// as Cloudflare documents them (developers.cloudflare.com,
// ruleset-engine/rules-language/functions).

// cfArg is one argument of a function call: a string literal, an integer
// literal or a field.
type cfArg struct {
	str   *string
	num   *int64
	field string
}

func (a cfArg) value(f map[string]string) (string, error) {
	switch {
	case a.str != nil:
		return *a.str, nil
	case a.num != nil:
		return strconv.FormatInt(*a.num, 10), nil
	}
	v, ok := f[a.field]
	if !ok {
		return "", fmt.Errorf("field %s has no value in this check", a.field)
	}
	return v, nil
}

// cfCall is a call of a boolean function (is_timed_hmac_valid_v0).
type cfCall struct {
	name string
	args []cfArg
}

func (p *cfParser) call() (cfExpr, error) {
	c := cfCall{name: p.peek().text}
	p.pos += 2 // name (
	for {
		t := p.peek()
		switch {
		case t.kind == "string":
			s := t.text
			c.args = append(c.args, cfArg{str: &s})
		case t.kind == "ident" && strings.Contains(t.text, "."):
			c.args = append(c.args, cfArg{field: t.text})
		case t.kind == "ident":
			n, err := strconv.ParseInt(t.text, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: argument %q", c.name, t.text)
			}
			c.args = append(c.args, cfArg{num: &n})
		default:
			return nil, fmt.Errorf("%s: argument %v", c.name, t)
		}
		p.pos++
		if p.keyword(")") {
			break
		}
		if !p.keyword(",") {
			return nil, fmt.Errorf("%s: want , or )", c.name)
		}
	}
	if c.name != "is_timed_hmac_valid_v0" {
		return nil, fmt.Errorf("function %s is not modelled by this test", c.name)
	}
	// Key (string literal), MessageMAC (field), ttl (integer literal),
	// currentTimeStamp (field), lengthOfSeparator (integer literal),
	// flags (string literal).
	a := c.args
	if len(a) != 6 || a[0].str == nil || a[1].field == "" || a[2].num == nil || a[3].field == "" || a[4].num == nil || a[5].str == nil {
		return nil, fmt.Errorf("is_timed_hmac_valid_v0: want (key, field, ttl, timestamp field, separator length, flags), got %d arguments", len(a))
	}
	return c, nil
}

func (c cfCall) eval(f map[string]string) (bool, error) {
	msg, err := c.args[1].value(f)
	if err != nil {
		return false, err
	}
	nowS, err := c.args[3].value(f)
	if err != nil {
		return false, err
	}
	now, err := strconv.ParseInt(nowS, 10, 64)
	if err != nil {
		return false, fmt.Errorf("timestamp %q", nowS)
	}
	return timedHMACValid(*c.args[0].str, msg, *c.args[2].num, now, int(*c.args[4].num), *c.args[5].str), nil
}

// timedHMACValid is is_timed_hmac_valid_v0: MessageMAC is message,
// separator (sepLen bytes), a 10-digit Unix timestamp, "-" and the
// base64 HMAC-SHA256 of message+timestamp under key. With flag "s" the
// mac is URL-safe base64 without padding (43 characters), else standard
// base64, URL-encoded. Valid when the macs agree and now < timestamp+ttl.
func timedHMACValid(key, messageMAC string, ttl, now int64, sepLen int, flags string) bool {
	if flags != "s" {
		panic("only flag s is modelled")
	}
	const macLen, tsLen = 43, 10
	n := len(messageMAC)
	if n < macLen+1+tsLen+sepLen+1 {
		return false
	}
	mac := messageMAC[n-macLen:]
	if messageMAC[n-macLen-1] != '-' {
		return false
	}
	tsS := messageMAC[n-macLen-1-tsLen : n-macLen-1]
	for _, c := range tsS {
		if c < '0' || c > '9' {
			return false
		}
	}
	message := messageMAC[:n-macLen-1-tsLen-sepLen]
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return false
	}
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(message + tsS))
	ts, _ := strconv.ParseInt(tsS, 10, 64)
	return hmac.Equal(got, h.Sum(nil)) && now < ts+ttl
}

// wildcardReplace is wildcard_replace(source, pattern, replacement,
// flags): when the whole source matches pattern ("*": any characters,
// "/" included; flag "s": case-sensitive), replacement with ${1}... the
// captures; else source unchanged. Cloudflare does not say whether "*"
// matches lazily or greedily: lazy chooses which, and callers check that
// their patterns capture the same either way.
func wildcardReplace(source, pattern, replacement, flags string, lazy bool) string {
	if flags != "s" {
		panic("only flag s is modelled")
	}
	caps, ok := wildcardCaptures(pattern, source, lazy)
	if !ok {
		return source
	}
	out := replacement
	for i := len(caps); i >= 1; i-- {
		out = strings.ReplaceAll(out, "${"+strconv.Itoa(i)+"}", caps[i-1])
	}
	return out
}

// wildcardCaptures matches all of s against pattern and returns what each
// "*" matched, trying the shortest (lazy) or longest run first.
func wildcardCaptures(pattern, s string, lazy bool) ([]string, bool) {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return nil, pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return nil, false
	}
	s = s[star:]
	rest := pattern[star+1:]
	try := func(n int) ([]string, bool) {
		caps, ok := wildcardCaptures(rest, s[n:], lazy)
		if !ok {
			return nil, false
		}
		return append([]string{s[:n]}, caps...), true
	}
	if lazy {
		for n := 0; n <= len(s); n++ {
			if caps, ok := try(n); ok {
				return caps, true
			}
		}
	} else {
		for n := len(s); n >= 0; n-- {
			if caps, ok := try(n); ok {
				return caps, true
			}
		}
	}
	return nil, false
}
