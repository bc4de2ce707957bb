package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	testSegment = 60 * time.Second
	testSecret  = "0123456789abcdef0123456789abcdef"
)

// t0 is a window start for 60 s segments and windows of 10 (600 s):
// 2026-01-01T00:00:00Z.
var t0 = time.Unix(1767225600, 0)

func newKeyring(t testing.TB, cfg Config) *Keyring {
	t.Helper()
	if cfg.Window == 0 {
		cfg.Window = 10
	}
	k, err := New(cfg, testSegment)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVector(t *testing.T) {
	// Pinned: the same vector is in testdata/vectors.json (computed with
	// openssl dgst -sha256 -hmac), for the JS, CloudFront and Cloudflare
	// implementations.
	k := newKeyring(t, Config{Keys: "k1:" + testSecret})
	tok, err := k.Mint("scores", t0.Add(599*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.Value, "k1.1767225600-wBDhEHBv3MS8T5aBhX2xaF7uxU0llhQSFk-aQqWdRx4"; got != want {
		t.Fatalf("token = %q, want %q", got, want)
	}
	if !tok.Start.Equal(t0) || !tok.Expires.Equal(t0.Add(660*time.Second)) || tok.KeyID != "k1" || tok.Feed != "scores" {
		t.Fatalf("token = %+v", tok)
	}
}

func TestTokenJSON(t *testing.T) {
	k := newKeyring(t, Config{Keys: "k1:" + testSecret})
	tok, _ := k.Mint("scores", t0)
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"token":"k1.1767225600-wBDhEHBv3MS8T5aBhX2xaF7uxU0llhQSFk-aQqWdRx4","feed":"scores","key_id":"k1","window_start":"2026-01-01T00:00:00Z","expires":"2026-01-01T00:11:00Z"}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
}

func TestVectorsFile(t *testing.T) {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		KeyID  string `json:"key_id"`
		Secret string `json:"secret"`
		Feed   string `json:"feed"`
		TS     int64  `json:"ts"`
		Token  string `json:"token"`
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 3 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		k := newKeyring(t, Config{Keys: Secret(v.KeyID + ":" + v.Secret)})
		tok, err := k.Mint(v.Feed, time.Unix(v.TS, 0))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Value != v.Token {
			t.Errorf("%s/%s at %d: minted %q, file says %q", v.KeyID, v.Feed, v.TS, tok.Value, v.Token)
		}
		if err := k.Validate(v.Feed, v.Token, time.Unix(v.TS, 0)); err != nil {
			t.Errorf("%s: %v", v.Token, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	k := newKeyring(t, Config{Keys: "a:" + testSecret})
	for _, off := range []time.Duration{0, time.Second, 301 * time.Second, 599*time.Second + 999*time.Millisecond} {
		now := t0.Add(off)
		tok, err := k.Mint("prices", now)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.Start.Equal(t0) {
			t.Errorf("at +%s: start %v, want %v", off, tok.Start, t0)
		}
		if err := k.Validate("prices", tok.Value, now); err != nil {
			t.Errorf("at +%s: %v", off, err)
		}
		got, err := k.Check("prices", tok.Value, now)
		if err != nil || got != tok {
			t.Errorf("Check = %+v, %v; want %+v", got, err, tok)
		}
	}
	// The next window has its own token.
	a, _ := k.Mint("prices", t0)
	b, _ := k.Mint("prices", t0.Add(600*time.Second))
	if a.Value == b.Value || !b.Start.Equal(t0.Add(600*time.Second)) {
		t.Errorf("windows: %q, %q (start %v)", a.Value, b.Value, b.Start)
	}
	// URL-safe: one path segment, nothing to escape.
	if strings.Trim(a.Value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		t.Errorf("token %q has characters a path would escape", a.Value)
	}
}

func TestWindowEdges(t *testing.T) {
	k := newKeyring(t, Config{Keys: "a:" + testSecret})
	tok, _ := k.Mint("prices", t0)
	end := t0.Add(600 * time.Second)
	overlap := testSegment
	for _, c := range []struct {
		at   time.Time
		want error
	}{
		{t0.Add(-Skew - time.Nanosecond), ErrNotYetValid},
		{t0.Add(-Skew), nil},
		{t0, nil},
		{end, nil},
		{end.Add(overlap - time.Nanosecond), nil},
		{end.Add(overlap), ErrExpired},
		{end.Add(time.Hour), ErrExpired},
	} {
		if got := k.Validate("prices", tok.Value, c.at); got != c.want {
			t.Errorf("at %v (window %v): %v, want %v", c.at, t0, got, c.want)
		}
	}
	// An explicit overlap.
	k2 := newKeyring(t, Config{Keys: "a:" + testSecret, Overlap: 90 * time.Second})
	if err := k2.Validate("prices", tok.Value, end.Add(89*time.Second)); err != nil {
		t.Errorf("overlap 90s, +89s: %v", err)
	}
	if err := k2.Validate("prices", tok.Value, end.Add(90*time.Second)); err != ErrExpired {
		t.Errorf("overlap 90s, +90s: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	k := newKeyring(t, Config{Keys: "a:" + testSecret + ",b:bbbbbbbbbbbbbbbbbbbb"})
	tok, _ := k.Mint("prices", t0)
	ts := "1767225600"
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	mac := tok.Value[strings.IndexByte(tok.Value, '-')+1:]
	for _, c := range []struct {
		name, feed, value string
		want              error
	}{
		{"missing", "prices", "", ErrMissing},
		{"no dot", "prices", "a" + ts + "-" + mac, ErrMalformed},
		{"no dash", "prices", "a." + ts + mac, ErrMalformed},
		{"empty kid", "prices", "." + ts + "-" + mac, ErrMalformed},
		{"long kid", "prices", "abcdefghijklmnopq." + ts + "-" + mac, ErrMalformed},
		{"kid punctuation", "prices", "a_b." + ts + "-" + mac, ErrMalformed},
		{"empty ts", "prices", "a.-" + mac, ErrMalformed},
		{"leading zero", "prices", "a.0" + ts + "-" + mac, ErrMalformed},
		{"signed ts", "prices", "a.+" + ts + "-" + mac, ErrMalformed},
		{"long ts", "prices", "a.1234567890123-" + mac, ErrMalformed},
		{"short mac", "prices", tok.Value[:len(tok.Value)-1], ErrMalformed},
		{"long mac", "prices", tok.Value + "A", ErrMalformed},
		{"padded mac", "prices", tok.Value[:len(tok.Value)-1] + "=", ErrBadMAC},
		{"unknown key", "prices", "c." + ts + "-" + mac, ErrUnknownKey},
		{"other key's id", "prices", "b." + ts + "-" + mac, ErrBadMAC},
		{"flipped mac", "prices", flip(tok.Value, len(tok.Value)-5), ErrBadMAC},
		{"other ts", "prices", "a.1767226200-" + mac, ErrBadMAC},
		{"other feed", "scores", tok.Value, ErrBadMAC},
		{"feed prefix", "price", tok.Value, ErrBadMAC},
	} {
		if got := k.Validate(c.feed, c.value, t0); got != c.want {
			t.Errorf("%s (%q): %v, want %v", c.name, c.value, got, c.want)
		} else if got != nil && ReasonOf(got) != got.(*Error).Reason {
			t.Errorf("%s: ReasonOf = %q", c.name, ReasonOf(got))
		}
	}
	// Expired and not yet valid are said of genuine tokens only.
	if err := k.Validate("prices", tok.Value, t0.Add(24*time.Hour)); err != ErrExpired {
		t.Errorf("a day later: %v", err)
	}
	if err := k.Validate("prices", flip(tok.Value, len(tok.Value)-5), t0.Add(24*time.Hour)); err != ErrBadMAC {
		t.Errorf("forged, a day later: %v", err)
	}
	if err := k.Validate("prices", tok.Value, t0.Add(-time.Hour)); err != ErrNotYetValid {
		t.Errorf("an hour early: %v", err)
	}
	// Signed for a window start this grid does not have (the window
	// length changed): refused.
	k5 := newKeyring(t, Config{Keys: "a:" + testSecret, Window: 5})
	half, _ := k5.Mint("prices", t0.Add(300*time.Second))
	if err := k.Validate("prices", half.Value, t0.Add(300*time.Second)); err != ErrMalformed {
		t.Errorf("off-grid window start: %v", err)
	}
	// Every reason is listed, and is what ReasonOf says.
	for _, e := range []*Error{ErrMissing, ErrMalformed, ErrUnknownKey, ErrBadMAC, ErrExpired, ErrNotYetValid} {
		if !strings.Contains(strings.Join(Reasons, " "), e.Reason) || ReasonOf(fmt.Errorf("x: %w", e)) != e.Reason {
			t.Errorf("reason %q", e.Reason)
		}
		if !errors.Is(fmt.Errorf("x: %w", e), e) {
			t.Errorf("errors.Is(%v)", e)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	oldOnly := newKeyring(t, Config{Keys: "old:old-secret-old-secret"})
	tok, _ := oldOnly.Mint("scores", t0)
	// A new key is added in front: it mints, the old one still validates.
	both := newKeyring(t, Config{Keys: "new:new-secret-new-secret,old:old-secret-old-secret"})
	if err := both.Validate("scores", tok.Value, t0); err != nil {
		t.Errorf("old token with both keys: %v", err)
	}
	if ids := both.KeyIDs(); len(ids) != 2 || ids[0] != "new" || ids[1] != "old" {
		t.Errorf("KeyIDs = %v", ids)
	}
	fresh, _ := both.Mint("scores", t0)
	if fresh.KeyID != "new" || !strings.HasPrefix(fresh.Value, "new.") {
		t.Errorf("minted with %q: %q", fresh.KeyID, fresh.Value)
	}
	if err := oldOnly.Validate("scores", fresh.Value, t0); err != ErrUnknownKey {
		t.Errorf("new token on a replica with the old key only: %v", err)
	}
	// MintWithKey picks any listed key.
	viaOld, err := both.MintWithKey("scores", "old", t0)
	if err != nil || viaOld.Value != tok.Value {
		t.Errorf("MintWithKey(old) = %q, %v; want %q", viaOld.Value, err, tok.Value)
	}
	if _, err := both.MintWithKey("scores", "gone", t0); err == nil {
		t.Error("MintWithKey of an unlisted key")
	}
	// The old key is removed: its tokens are refused.
	newOnly := newKeyring(t, Config{Keys: "new:new-secret-new-secret"})
	if err := newOnly.Validate("scores", tok.Value, t0); err != ErrUnknownKey {
		t.Errorf("old token after removal: %v", err)
	}
	if err := newOnly.Validate("scores", fresh.Value, t0); err != nil {
		t.Errorf("new token after removal: %v", err)
	}
	// The same id with another secret is a different key.
	reused := newKeyring(t, Config{Keys: "old:a-different-secret!"})
	if err := reused.Validate("scores", tok.Value, t0); err != ErrBadMAC {
		t.Errorf("same id, other secret: %v", err)
	}
}

func TestMintErrors(t *testing.T) {
	none := newKeyring(t, Config{})
	if _, err := none.Mint("prices", t0); err != ErrNoKeys {
		t.Errorf("no keys: %v", err)
	}
	k := newKeyring(t, Config{Keys: "a:" + testSecret})
	for _, f := range []string{"", "a/b", "a.b", strings.Repeat("x", 65)} {
		if _, err := k.Mint(f, t0); err == nil {
			t.Errorf("Mint(%q) minted", f)
		}
	}
}

func TestConfig(t *testing.T) {
	ok := Secret("a:" + testSecret)
	for _, c := range []struct {
		name    string
		cfg     Config
		segment time.Duration
		want    string // "" = valid
	}{
		{"defaults", Defaults(), testSegment, ""},
		{"keys", Config{Keys: ok, Window: 10}, testSegment, ""},
		{"protected", Config{Keys: ok, Window: 10, ProtectedFeeds: []string{"scores", " prices"}}, testSegment, ""},
		{"all", Config{Keys: ok, Window: 10, ProtectedFeeds: []string{"*"}}, testSegment, ""},
		{"protected without keys", Config{Window: 10, ProtectedFeeds: []string{"scores"}}, testSegment, "MARQUEE_PROTECTED_FEEDS is set but MARQUEE_TOKEN_KEYS is empty"},
		{"bad feed", Config{Keys: ok, Window: 10, ProtectedFeeds: []string{"a.b"}}, testSegment, "MARQUEE_PROTECTED_FEEDS"},
		{"star and names", Config{Keys: ok, Window: 10, ProtectedFeeds: []string{"*", "a"}}, testSegment, "MARQUEE_PROTECTED_FEEDS"},
		{"no colon", Config{Keys: "abc", Window: 10}, testSegment, "MARQUEE_TOKEN_KEYS: entry 1"},
		{"short secret", Config{Keys: "a:short", Window: 10}, testSegment, "at least 16 bytes"},
		{"bad id", Config{Keys: ok + ",b-c:" + testSecret, Window: 10}, testSegment, "entry 2: key id"},
		{"empty id", Config{Keys: ":" + testSecret, Window: 10}, testSegment, "entry 1: key id"},
		{"space after comma", Config{Keys: ok + ", b:" + testSecret, Window: 10}, testSegment, "entry 2: key id"},
		{"twice", Config{Keys: ok + "," + ok, Window: 10}, testSegment, "listed twice"},
		{"window 0", Config{Keys: ok}, testSegment, "MARQUEE_TOKEN_WINDOW"},
		{"window huge", Config{Keys: ok, Window: MaxWindow + 1}, testSegment, "MARQUEE_TOKEN_WINDOW"},
		{"fractional segments", Config{Keys: ok, Window: 2}, 1500 * time.Millisecond, ""},
		{"fractional window refused", Config{Keys: ok, Window: 3}, 1700 * time.Millisecond, "whole number of seconds"},
		{"overlap = window", Config{Keys: ok, Window: 10, Overlap: 600 * time.Second}, testSegment, "MARQUEE_TOKEN_OVERLAP"},
		{"overlap negative", Config{Keys: ok, Window: 10, Overlap: -time.Second}, testSegment, "MARQUEE_TOKEN_OVERLAP"},
		{"overlap 1 segment window", Config{Keys: ok, Window: 1}, testSegment, "MARQUEE_TOKEN_OVERLAP"},
	} {
		err := c.cfg.Validate(c.segment)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		case err != nil && strings.Contains(err.Error(), testSecret):
			t.Errorf("%s: the error shows a secret: %v", c.name, err)
		}
	}
}

func TestSecretNeverShown(t *testing.T) {
	cfg := Config{Keys: "a:" + testSecret, Window: 10}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "keys", cfg.Keys)
	j, _ := json.Marshal(cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%q", cfg.Keys), fmt.Sprint(cfg.Keys), string(j), logged.String()} {
		if strings.Contains(s, "0123456789abcdef") {
			t.Errorf("secret shown: %s", s)
		}
	}
	if Secret("").String() != "" || cfg.Keys.String() != "[redacted]" {
		t.Errorf("String: %q, %q", Secret("").String(), cfg.Keys.String())
	}
}

func TestProtected(t *testing.T) {
	k := newKeyring(t, Config{Keys: "a:" + testSecret, ProtectedFeeds: []string{"scores"}})
	if !k.Protected("scores") || k.Protected("prices") || !k.Any() {
		t.Error("named feed")
	}
	all := newKeyring(t, Config{Keys: "a:" + testSecret, ProtectedFeeds: []string{"*"}})
	if !all.Protected("anything") {
		t.Error("*")
	}
	if newKeyring(t, Config{}).Any() {
		t.Error("default protects a feed")
	}
}

// FuzzValidate: Validate never panics and accepts only what Mint produces
// for the feed at the token's own window.
func FuzzValidate(f *testing.F) {
	k := newKeyring(f, Config{Keys: "a:" + testSecret + ",b:bbbbbbbbbbbbbbbbbbbb"})
	tok, _ := k.Mint("prices", t0)
	f.Add("prices", tok.Value, int64(0))
	f.Add("scores", tok.Value, int64(10))
	f.Add("prices", "b.1767225600-"+strings.Repeat("A", 43), int64(-5))
	f.Add("prices", "a.0-"+strings.Repeat("_", 43), int64(1))
	f.Add("", "..--", int64(0))
	f.Fuzz(func(t *testing.T, feed, value string, off int64) {
		now := t0.Add(time.Duration(off) * time.Second)
		got, err := k.Check(feed, value, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		want, err := k.MintWithKey(feed, got.KeyID, got.Start)
		if err != nil || want.Value != value {
			t.Fatalf("accepted %q for %q at %v; Mint gives %q (%v)", value, feed, now, want.Value, err)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	k := newKeyring(b, Config{Keys: "a:" + testSecret})
	tok, _ := k.Mint("prices", t0)
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Validate("prices", tok.Value, t0); err != nil {
			b.Fatal(err)
		}
	}
}
