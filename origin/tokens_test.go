package origin

import (
	"testing"
	"time"

	"marquee/token"
)

// Test keys of the token tests: "new" mints, "old" still validates.
const (
	testKeys   = "new:new-secret-new-secret,old:old-secret-old-secret"
	testWindow = 2 // segments: 20 s windows with testSegmenter's 10 s segments
)

// protectedConfig returns the default origin configuration with feeds
// protected by testKeys, windows of testWindow segments and the default
// overlap (one segment).
func protectedConfig(feeds ...string) Config {
	c := Defaults()
	c.Tokens = token.Config{Keys: testKeys, ProtectedFeeds: feeds, Window: testWindow}
	return c
}

// mint returns the current token of feed on the bubble's origin.
func (b *bubble) mint(feed string) string {
	b.t.Helper()
	tok, err := b.s.tokens.Mint(feed, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	return tok.Value
}

var _ = testing.T{}
