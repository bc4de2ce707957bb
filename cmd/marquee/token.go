package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"marquee/token"
)

// tokenUsage is the synopsis of `marquee token`.
const tokenUsage = `usage: marquee token -feed NAME [-key ID] [-at RFC3339]

Prints the token of feed NAME for the window that holds -at (default now),
as JSON: token, feed, key_id, window_start, expires, descriptor_url. It
reads the server's environment: MARQUEE_TOKEN_KEYS (the first key signs
unless -key names another), MARQUEE_SEGMENT_LENGTH, MARQUEE_TOKEN_WINDOW,
MARQUEE_TOKEN_OVERLAP, MARQUEE_URL_PREFIX.
`

// tokenOutput is what `marquee token` prints.
type tokenOutput struct {
	token.Token
	// DescriptorURL is the path of the feed's descriptor with the token,
	// under MARQUEE_URL_PREFIX.
	DescriptorURL string `json:"descriptor_url"`
}

// tokenMain is the `marquee token` subcommand: it mints a token from the
// environment and writes it to stdout as JSON. It returns the exit
// status: 0, 1 for a bad environment (named on stderr), 2 for bad usage.
func tokenMain(args, environ []string, now time.Time, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("marquee token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage); fs.PrintDefaults() }
	feed := fs.String("feed", "", "the feed the token is for (required)")
	kid := fs.String("key", "", "id of the key in MARQUEE_TOKEN_KEYS to sign with (default: the first)")
	at := fs.String("at", "", "an RFC 3339 time: mint the token of the window that holds it (default: now)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "marquee token: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments %q", fs.Args())
	case *feed == "":
		return usage("-feed is required")
	case !token.ValidFeed(*feed):
		return usage("-feed %q is not a feed name ([A-Za-z0-9_-]{1,64})", *feed)
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usage("-at must be an RFC 3339 time such as 2026-01-01T12:00:00Z, got %q", *at)
		}
		now = t
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "marquee token:", err)
		return 1
	}
	cfg, err := parseConfig(environ)
	if err != nil {
		return fail(err)
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	keys, err := token.New(cfg.Origin.Tokens, cfg.Segmenter.SegmentLength)
	if err != nil {
		return fail(err)
	}
	if !keys.HasKeys() {
		return fail(errors.New("MARQUEE_TOKEN_KEYS is empty: set the same id:secret keys as the origin's"))
	}
	var tok token.Token
	if *kid == "" {
		tok, err = keys.Mint(*feed, now)
	} else {
		tok, err = keys.MintWithKey(*feed, *kid, now)
	}
	if err != nil {
		return fail(err)
	}
	if keys.Any() && !keys.Protected(*feed) {
		fmt.Fprintf(stderr, "marquee token: note: %s is not in MARQUEE_PROTECTED_FEEDS; an origin with these settings answers its tokened paths 404\n", *feed)
	}
	out := tokenOutput{Token: tok, DescriptorURL: cfg.Segmenter.URLPrefix + "/" + *feed + "/t/" + tok.Value}
	b, err := json.Marshal(out)
	if err != nil {
		return fail(err)
	}
	stdout.Write(append(b, '\n'))
	return 0
}
