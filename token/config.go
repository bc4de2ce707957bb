package token

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config is the token settings (environment prefix MARQUEE_).
type Config struct {
	// Keys are the HMAC keys, MARQUEE_TOKEN_KEYS: comma-separated id:secret
	// pairs. The first one mints, all validate (rotation). id: 1–16 of
	// [A-Za-z0-9]; secret: the bytes after the first ':', at least 16, taken
	// as they are (no spaces are trimmed).
	// Default none.
	Keys Secret `env:"TOKEN_KEYS"`
	// ProtectedFeeds are the feeds that need a token, MARQUEE_PROTECTED_FEEDS:
	// comma-separated names, or "*" for every feed. Default none: every
	// feed is public.
	ProtectedFeeds []string `env:"PROTECTED_FEEDS" envSeparator:","`
	// Window is a token's window, MARQUEE_TOKEN_WINDOW, in segments; the
	// window length (Window × segment length) must be whole seconds.
	// Default 10.
	Window int `env:"TOKEN_WINDOW" envDefault:"10"`
	// Overlap is how long after its window's end a token stays valid,
	// MARQUEE_TOKEN_OVERLAP; 0 means one segment length. Must be below the
	// window length. Default 0 (one segment).
	Overlap time.Duration `env:"TOKEN_OVERLAP" envDefault:"0s"`
}

// Defaults returns the configuration of an empty environment.
func Defaults() Config { return Config{Window: 10} }

// Secret is a string that holds secrets: it is never printed. String,
// GoString, MarshalText (so encoding/json) and slog show "[redacted]"
// when it is set.
type Secret string

func (s Secret) redacted() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

func (s Secret) String() string               { return s.redacted() }
func (s Secret) GoString() string             { return `"` + s.redacted() + `"` }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(s.redacted()) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

// key is one parsed id:secret pair.
type key struct {
	id     string
	secret []byte
}

// MinSecretLen is the shortest secret accepted, in bytes.
const MinSecretLen = 16

// MaxWindow bounds MARQUEE_TOKEN_WINDOW (segments).
const MaxWindow = 10000

// parseKeys parses MARQUEE_TOKEN_KEYS. Its errors name the variable and
// the key's position or id, never a secret.
func parseKeys(s Secret) ([]key, error) {
	if s == "" {
		return nil, nil
	}
	var keys []key
	seen := map[string]bool{}
	for i, pair := range strings.Split(string(s), ",") {
		id, secret, ok := strings.Cut(pair, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("MARQUEE_TOKEN_KEYS: entry %d is not id:secret", i+1)
		case !validKeyID(id):
			return nil, fmt.Errorf("MARQUEE_TOKEN_KEYS: entry %d: key id must be 1–16 letters or digits (no spaces around the commas)", i+1)
		case len(secret) < MinSecretLen:
			return nil, fmt.Errorf("MARQUEE_TOKEN_KEYS: key %q: secret must be at least %d bytes, got %d", id, MinSecretLen, len(secret))
		case seen[id]:
			return nil, fmt.Errorf("MARQUEE_TOKEN_KEYS: key id %q is listed twice", id)
		}
		seen[id] = true
		keys = append(keys, key{id: id, secret: []byte(secret)})
	}
	return keys, nil
}

func validKeyID(id string) bool {
	if len(id) < 1 || len(id) > 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !alnum(id[i]) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// ValidFeed reports whether name is a feed name marquee accepts:
// [A-Za-z0-9_-]{1,64}.
func ValidFeed(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Validate checks every setting against the segment length (the
// segmenter's MARQUEE_SEGMENT_LENGTH) and names the variable at fault.
func (c Config) Validate(segment time.Duration) error {
	_, err := New(c, segment)
	return err
}

// windowLength returns Window × segment, checked. The window length must
// be whole seconds only when there are keys (nothing is minted or
// validated without), so that an unused default never stops start-up.
func (c Config) windowLength(segment time.Duration, keys bool) (time.Duration, error) {
	if segment <= 0 {
		return 0, fmt.Errorf("token: segment length must be positive, got %s", segment)
	}
	if c.Window < 1 || c.Window > MaxWindow {
		return 0, fmt.Errorf("MARQUEE_TOKEN_WINDOW must be between 1 and %d segments, got %d", MaxWindow, c.Window)
	}
	l := time.Duration(c.Window) * segment
	if keys && l%time.Second != 0 {
		return 0, fmt.Errorf("MARQUEE_TOKEN_WINDOW × MARQUEE_SEGMENT_LENGTH must be a whole number of seconds, got %d × %s = %s", c.Window, segment, l)
	}
	return l, nil
}
