package segmenter

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Conflation is MARQUEE_CONFLATE: the per-key conflation interval I of
// every feed, or of named feeds. The text form is a comma-separated list of
// items, each either a duration (the default for every feed not named) or
// feed=duration (that feed; 0s turns it off for it), at most one default and
// one item per feed: "500ms", "prices=250ms,scores=2s", "1s,prices=250ms",
// "1s,audit=0s". Empty (the default) turns conflation off.
//
// Each interval must divide the part length P or be a multiple of P that
// divides the segment length D, so that its buckets lie on the grid: every
// bucket lies within one part or is a run of whole parts, and no bucket
// crosses a segment boundary (see the package documentation).
type Conflation struct {
	// Every is the interval of every feed not named in Feeds; 0 is off.
	Every time.Duration
	// Feeds are the per-feed intervals, sorted by feed name; 0 is off.
	Feeds []FeedInterval
}

// FeedInterval is one feed=duration item of a Conflation.
type FeedInterval struct {
	Feed     string
	Interval time.Duration
}

// minConflation is the shortest interval: below it conflation saves little
// and the per-bucket work would dominate.
const minConflation = 10 * time.Millisecond

// For returns the conflation interval of feed, 0 when it is off.
func (c Conflation) For(feed string) time.Duration {
	if i, ok := slices.BinarySearchFunc(c.Feeds, feed, func(fi FeedInterval, f string) int {
		return cmp.Compare(fi.Feed, f)
	}); ok {
		return c.Feeds[i].Interval
	}
	return c.Every
}

// On reports whether any feed is conflated.
func (c Conflation) On() bool {
	if c.Every > 0 {
		return true
	}
	for _, fi := range c.Feeds {
		if fi.Interval > 0 {
			return true
		}
	}
	return false
}

// String returns the text form (empty when off).
func (c Conflation) String() string {
	var items []string
	if c.Every > 0 {
		items = append(items, c.Every.String())
	}
	for _, fi := range c.Feeds {
		items = append(items, fi.Feed+"="+fi.Interval.String())
	}
	return strings.Join(items, ",")
}

// MarshalText returns the text form.
func (c Conflation) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses the text form. It checks the syntax and that the
// intervals are not negative; Config.Validate checks them against the grid.
func (c *Conflation) UnmarshalText(b []byte) error {
	var out Conflation
	haveDefault := false
	for item := range strings.SplitSeq(string(b), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, ds, named := strings.Cut(item, "=")
		if !named {
			ds, name = name, ""
		}
		name, ds = strings.TrimSpace(name), strings.TrimSpace(ds)
		d, err := time.ParseDuration(ds)
		if err != nil {
			return fmt.Errorf("item %q: %q is not a duration (like 500ms)", item, ds)
		}
		if d < 0 {
			return fmt.Errorf("item %q: the interval must not be negative", item)
		}
		if !named {
			if haveDefault {
				return fmt.Errorf("item %q: more than one default interval (an item without feed=)", item)
			}
			haveDefault, out.Every = true, d
			continue
		}
		if !validFeedName(name) {
			return fmt.Errorf("item %q: %q is not a feed name [A-Za-z0-9_-]{1,64}", item, name)
		}
		if slices.ContainsFunc(out.Feeds, func(fi FeedInterval) bool { return fi.Feed == name }) {
			return fmt.Errorf("item %q: feed %s is named twice", item, name)
		}
		out.Feeds = append(out.Feeds, FeedInterval{Feed: name, Interval: d})
	}
	slices.SortFunc(out.Feeds, func(a, b FeedInterval) int { return cmp.Compare(a.Feed, b.Feed) })
	*c = out
	return nil
}

// check reports an interval that does not keep buckets on the grid of g.
func (c Conflation) check(g Grid) error {
	bad := func(d time.Duration, of string) error {
		return fmt.Errorf("MARQUEE_CONFLATE: interval %s%s must be at least %s and divide MARQUEE_PART_LENGTH (%s) or be a multiple of it that divides MARQUEE_SEGMENT_LENGTH (%s)",
			d, of, minConflation, g.Part, g.Segment)
	}
	ok := func(d time.Duration) bool {
		if d == 0 {
			return true
		}
		if d < minConflation {
			return false
		}
		return g.Part%d == 0 || (d%g.Part == 0 && g.Segment%d == 0)
	}
	if c.Every < 0 || !ok(c.Every) {
		return bad(c.Every, "")
	}
	for _, fi := range c.Feeds {
		if fi.Interval < 0 || !ok(fi.Interval) {
			return bad(fi.Interval, " of feed "+fi.Feed)
		}
	}
	return nil
}

// validFeedName is feed.ValidFeedName ([A-Za-z0-9_-]{1,64}); segmenter
// cannot import feed.
func validFeedName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
