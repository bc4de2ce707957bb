package origin

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"marquee/token"
)

// Config is the HTTP layer's configuration (environment prefix MARQUEE_).
type Config struct {
	// WriteTimeout bounds each batch write to a viewer; a viewer that cannot
	// take a batch within it is disconnected. Default 10s.
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s"`
	// MaxLagBytes is how far (bytes) a stream-mode viewer may fall behind the
	// segment log before it is closed and counted as slow. Default 4 MiB.
	MaxLagBytes int `env:"MAX_LAG_BYTES" envDefault:"4194304"`
	// EarlyHold is how long before a segment starts a request for it is
	// held (headers withheld until it starts) instead of refused. Default 10s.
	EarlyHold time.Duration `env:"EARLY_HOLD" envDefault:"10s"`
	// MaxStreams caps concurrent streaming responses (all modes); further
	// requests get 503. 0 means no cap. Default 0.
	MaxStreams int `env:"MAX_STREAMS" envDefault:"0"`
	// DrainDelay is how long readiness reports 503 before open streams are
	// ended at shutdown, so load balancers stop sending new viewers. Default 2s.
	DrainDelay time.Duration `env:"DRAIN_DELAY" envDefault:"2s"`
	// DrainSpread is the time over which open streams are ended, in
	// DrainBatches batches, so reconnects do not arrive as one spike. Default 5s.
	DrainSpread time.Duration `env:"DRAIN_SPREAD" envDefault:"5s"`
	// DrainBatches is the number of batches streams are ended in. Default 10.
	DrainBatches int `env:"DRAIN_BATCHES" envDefault:"10"`
	// SegmentMargin is added to an open segment's remaining time in its
	// s-maxage. Default 10s.
	SegmentMargin time.Duration `env:"SEGMENT_MARGIN" envDefault:"10s"`
	// ClientMode is the delivery mode the descriptor recommends to
	// marquee's browser client: stream (edges that stream to late joiners:
	// Varnish, Fastly, CloudFront), parts (edges that buffer cacheable
	// responses: Cloudflare) or direct (no CDN). Default stream.
	ClientMode string `env:"CLIENT_MODE" envDefault:"stream"`
	// HandOff hands a live stream-mode or direct-mode response over plain
	// HTTP/1.1 (not HTTP/2, not TLS) to a few writer goroutines per feed
	// and segment once its first batch is written (Linux): the connection
	// then costs its socket and a small struct instead of a handler
	// goroutine, net/http's reader and buffers, and each update is written
	// to it from the shared bytes without a copy. The connection is closed
	// when the response ends. Off: every response stays in its handler.
	// Default true.
	HandOff bool `env:"HANDOFF" envDefault:"true"`
	// DashboardOrigins are the origins, besides the page's own, whose feeds
	// the dashboard's ?origin= parameter may show: a comma-separated list
	// of scheme://host[:port] (lower case, no path). Any other ?origin= is
	// ignored, so that a link cannot show another site's data under this
	// site's address. The list is served in the page (data-origins) and is
	// also its Content-Security-Policy connect-src. Default none: the
	// dashboard shows this origin's feeds only.
	DashboardOrigins []string `env:"DASHBOARD_ORIGINS" envSeparator:","`
	// Tokens are the protected feeds and their token keys
	// (MARQUEE_PROTECTED_FEEDS, MARQUEE_TOKEN_KEYS, MARQUEE_TOKEN_WINDOW,
	// MARQUEE_TOKEN_OVERLAP; see package token). Checked against the
	// segment length by internal/app. Default: every feed public.
	Tokens token.Config
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		WriteTimeout:  10 * time.Second,
		MaxLagBytes:   4 << 20,
		EarlyHold:     10 * time.Second,
		DrainDelay:    2 * time.Second,
		DrainSpread:   5 * time.Second,
		DrainBatches:  10,
		SegmentMargin: 10 * time.Second,
		ClientMode:    "stream",
		HandOff:       true,
		Tokens:        token.Defaults(),
	}
}

// Validate checks every field and names the variable at fault.
func (c Config) Validate() error {
	switch {
	case c.WriteTimeout < 100*time.Millisecond:
		return fmt.Errorf("MARQUEE_WRITE_TIMEOUT must be at least 100ms, got %s", c.WriteTimeout)
	case c.MaxLagBytes < 64<<10:
		return fmt.Errorf("MARQUEE_MAX_LAG_BYTES must be at least 65536, got %d", c.MaxLagBytes)
	case c.EarlyHold < 0 || c.EarlyHold > time.Minute:
		return fmt.Errorf("MARQUEE_EARLY_HOLD must be between 0s and 1m, got %s", c.EarlyHold)
	case c.MaxStreams < 0:
		return fmt.Errorf("MARQUEE_MAX_STREAMS must not be negative, got %d", c.MaxStreams)
	case c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute:
		return fmt.Errorf("MARQUEE_DRAIN_DELAY must be between 0s and 5m, got %s", c.DrainDelay)
	case c.DrainSpread < 0 || c.DrainSpread > 10*time.Minute:
		return fmt.Errorf("MARQUEE_DRAIN_SPREAD must be between 0s and 10m, got %s", c.DrainSpread)
	case c.DrainBatches < 1 || c.DrainBatches > 1000:
		return fmt.Errorf("MARQUEE_DRAIN_BATCHES must be between 1 and 1000, got %d", c.DrainBatches)
	case c.ClientMode != "stream" && c.ClientMode != "parts" && c.ClientMode != "direct":
		return fmt.Errorf("MARQUEE_CLIENT_MODE must be stream, parts or direct, got %q", c.ClientMode)
	case c.SegmentMargin < 0 || c.SegmentMargin > 10*time.Minute:
		return fmt.Errorf("MARQUEE_SEGMENT_MARGIN must be between 0s and 10m, got %s", c.SegmentMargin)
	}
	for _, o := range c.DashboardOrigins {
		if !validOrigin(o) {
			return fmt.Errorf("MARQUEE_DASHBOARD_ORIGINS must list origins such as https://live.example.com (http or https, lower case, no path, separated by commas), got %q", o)
		}
	}
	return nil
}

// validOrigin reports whether s is a web origin spelt as browsers
// serialise it (URL.origin): http or https, a lower-case host, an optional
// port, nothing else.
func validOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "0" {
		return false
	}
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		return false // browsers leave a default port out of an origin
	}
	if u.Scheme+"://"+u.Host != s {
		return false // a path, query, fragment, user or upper case
	}
	return strings.Trim(u.Host, "abcdefghijklmnopqrstuvwxyz0123456789.-:[]") == ""
}
