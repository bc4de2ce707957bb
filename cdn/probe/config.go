package probe

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultViewers          = 50
	DefaultMinCollapseRatio = 5.0
	maxViewers              = 20000
)

// Names of the request variants a probe's viewers use (Config.Noise).
const (
	VariantPlain       = "plain"         // what EventSource sends: Accept, Cache-Control: no-cache
	VariantCookie      = "cookie"        // plus a session cookie, as a same-site page sends
	VariantLastEventID = "last-event-id" // plus Last-Event-ID, as a reconnecting EventSource sends
	VariantQuery       = "query"         // plus a cache-busting query string
)

var allVariants = []string{VariantPlain, VariantCookie, VariantLastEventID, VariantQuery}

// Config configures Stream and Parts. Zero values take the defaults given.
type Config struct {
	// Base is the edge's base URL, e.g. "https://live.example.com".
	Base string
	// Feed is the feed to watch. Default: the first feed GET /v1/feeds lists.
	Feed string
	// Viewers is the number of viewers. Default 50, at most 20000.
	Viewers int
	// Stagger is the window over which viewers join. Default half a segment.
	Stagger time.Duration
	// JoinBy, when set, ends the join window at this moment instead:
	// viewers join from the probe's start (after its descriptor request)
	// until JoinBy, and Stagger is ignored. A caller that plans the run on
	// the segment grid uses it, so that the probe's own start-up time
	// cannot push the last joins into a later segment.
	JoinBy time.Time
	// Random makes viewers join at uniformly random moments within Stagger
	// instead of evenly spaced ones.
	Random bool
	// Follow is how many segments after the one in progress at the last
	// join every viewer still watches whole (cmd/cdnprobe uses 1, so that
	// every viewer goes through at least one hand-over). Default 0.
	Follow int
	// Noise makes the viewers' requests differ the ways real ones do:
	// viewer i uses variant allVariants[i%4] (cookie, Last-Event-ID, query
	// string). An edge must collapse them all.
	Noise bool
	// MinCollapseRatio is the fewest viewers per origin response on every
	// segment that counts as collapsing. Default 5.
	MinCollapseRatio float64
	// BufferThreshold is the delivery delay above which a response counts
	// as buffered. Default a quarter of a segment, within [500ms, 5s].
	BufferThreshold time.Duration
	// PartSlack (parts mode) is how long after its part ended (or after
	// the request, if later) a part may arrive and still count as live; the
	// edge is late when more than half the parts exceed it. Default half a
	// part, within [250ms, 2s].
	PartSlack time.Duration
	// Header is added to every request (e.g. to reach a staging edge).
	Header http.Header
	// Client makes the requests. Default: a client of its own that keeps
	// one connection per viewer and never decompresses by itself.
	Client *http.Client
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

// withDefaults checks cfg, fills in the defaults that do not depend on the
// descriptor and parses the base URL.
func (cfg Config) withDefaults() (Config, *url.URL, error) {
	if cfg.Viewers == 0 {
		cfg.Viewers = DefaultViewers
	}
	if cfg.Viewers < 1 || cfg.Viewers > maxViewers {
		return cfg, nil, fmt.Errorf("probe: viewers must be between 1 and %d, got %d", maxViewers, cfg.Viewers)
	}
	if cfg.Follow < 0 {
		return cfg, nil, fmt.Errorf("probe: follow must not be negative, got %d", cfg.Follow)
	}
	if cfg.MinCollapseRatio <= 0 {
		cfg.MinCollapseRatio = DefaultMinCollapseRatio
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	base, err := url.Parse(strings.TrimRight(cfg.Base, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return cfg, nil, fmt.Errorf("probe: base URL must be http(s)://host[:port], got %q", cfg.Base)
	}
	return cfg, base, nil
}
