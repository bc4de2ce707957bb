package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"marquee/wire"
)

// config is the command line.
type config struct {
	base       *url.URL
	feed       string
	viewers    int
	duration   time.Duration
	ramp       time.Duration
	mode       string
	localAddrs []netip.Addr
	json       bool
}

const maxViewers = 100000

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("ssebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "base URL of the origin or edge, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&c.feed, "feed", "", "feed to watch (default: the first one listed)")
	fs.IntVar(&c.viewers, "viewers", 100, "number of concurrent viewers")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "total run time, ramp included; it then stops")
	fs.DurationVar(&c.ramp, "ramp", 5*time.Second, "viewers join evenly over this time")
	fs.StringVar(&c.mode, "mode", wire.ModeStream, "stream (segments, following next events), parts (upto/{k}, then parts/{k+1}, …) or direct (/events)")
	local := fs.String("local-addrs", "", "source addresses to spread connections over: a range 127.0.0.1-127.0.0.20 or a comma list")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	u, err := url.Parse(strings.TrimRight(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("-url must be http(s)://host[:port], got %q", *base)
	}
	c.base = u
	switch {
	case c.viewers < 1 || c.viewers > maxViewers:
		return c, fmt.Errorf("-viewers must be between 1 and %d, got %d", maxViewers, c.viewers)
	case c.duration <= 0 || c.duration > 24*time.Hour:
		return c, fmt.Errorf("-duration must be between 0 and 24h, got %s", c.duration)
	case c.ramp < 0 || c.ramp >= c.duration:
		return c, fmt.Errorf("-ramp must be at least 0 and shorter than -duration, got %s", c.ramp)
	case c.mode != wire.ModeStream && c.mode != wire.ModeParts && c.mode != wire.ModeDirect:
		return c, fmt.Errorf("-mode must be stream, parts or direct, got %q", c.mode)
	}
	if c.localAddrs, err = parseAddrs(*local); err != nil {
		return c, fmt.Errorf("-local-addrs: %w", err)
	}
	return c, nil
}

// parseAddrs parses "a-b" (an inclusive IPv4 range) or "a,b,c".
func parseAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, err := netip.ParseAddr(from)
		if err != nil {
			return nil, err
		}
		b, err := netip.ParseAddr(to)
		if err != nil {
			return nil, err
		}
		if b.Less(a) {
			return nil, fmt.Errorf("range %s is backwards", s)
		}
		var out []netip.Addr
		for x := a; x.Compare(b) <= 0; x = x.Next() {
			if len(out) == 65536 {
				return nil, fmt.Errorf("range %s is too large", s)
			}
			out = append(out, x)
		}
		return out, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
