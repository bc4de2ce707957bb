package segmenter

import (
	"fmt"
	"strings"
	"time"
)

// Config is the segmenter's configuration. cmd/marquee reads it from the
// environment with the MARQUEE_ prefix.
type Config struct {
	// SegmentLength is D, the length of one segment on the wall-clock grid.
	// Default 60s; Validate allows 10s–300s.
	SegmentLength time.Duration `env:"SEGMENT_LENGTH" envDefault:"60s"`
	// PartLength is P, the length of one part (parts mode). Must divide
	// SegmentLength. Default 1s.
	PartLength time.Duration `env:"PART_LENGTH" envDefault:"1s"`
	// PartLateness is the lateness allowance L. Updates go into parts by
	// their message timestamp, and part k closes (its boundary is recorded,
	// it becomes servable) at local time PartEnd(k)+L, or earlier as soon
	// as an update stamped at or after PartEnd(k) is appended; a segment
	// rotates the same way. Replicas produce the same bytes as long as each
	// message reaches each of them less than L after its timestamp (see the
	// package documentation for what happens to later ones). Default 250ms;
	// Validate allows 0–5s, and it must be less than half a segment.
	PartLateness time.Duration `env:"PART_LATENESS" envDefault:"250ms"`
	// Keepalive is H: when a part closes and no frame was written to the
	// segment during the last H of stream time (the grid and the message
	// timestamps, not the local clock), a keepalive comment ends that part.
	// Default 15s; 1s–60s.
	Keepalive time.Duration `env:"KEEPALIVE" envDefault:"15s"`
	// Retention is how long a closed segment stays readable after its end.
	// 0 means two segment lengths. At least one segment length.
	Retention time.Duration `env:"RETENTION" envDefault:"0s"`
	// History is the number of recent update frames kept per feed for
	// direct-mode resumption from Last-Event-ID. Default 4096.
	History int `env:"HISTORY" envDefault:"4096"`
	// Retry is the reconnection delay announced to EventSource clients in
	// each segment's "retry" field. Default 3s.
	Retry time.Duration `env:"RETRY" envDefault:"3s"`
	// MaxFeeds caps the number of feeds; messages for further feeds are
	// dropped. Default 64.
	MaxFeeds int `env:"MAX_FEEDS" envDefault:"64"`
	// MaxKeys caps the number of keys per feed. Default 10000.
	MaxKeys int `env:"MAX_KEYS" envDefault:"10000"`
	// MaxFeedBytes caps a feed's state, in bytes: the sum over its keys of
	// the key's length plus its (compacted JSON) value's. An update that
	// would grow the state above it is refused (ErrTooManyBytes); one that
	// shrinks it or deletes is always accepted. Default 16777216 (16 MiB):
	// every viewer downloads the whole state in the snapshot at the start
	// of every segment, so a bigger state is no longer a live feed.
	// Validate allows 64 KiB–1 GiB.
	MaxFeedBytes int64 `env:"MAX_FEED_BYTES" envDefault:"16777216"`
	// MaxStateBytes caps the state of all feeds together, in bytes, the
	// same way. Default 134217728 (128 MiB): eight feeds at MaxFeedBytes.
	// Memory: the state is held once live, once in the snapshot of every
	// open or retained segment log (Retention/SegmentLength + 2 of them)
	// and once in the cached direct-mode snapshot, so the state costs up to
	// MaxStateBytes × (Retention/SegmentLength + 4), 768 MiB at the
	// defaults (one copy more while a reload stages, and one per reload in
	// the open log), plus the update frames in the logs and the direct-mode
	// histories, which the message rate and History × the message size
	// bound, not this cap. Validate allows MaxFeedBytes–64 GiB.
	MaxStateBytes int64 `env:"MAX_STATE_BYTES" envDefault:"134217728"`
	// FeedIdleEvict lets a new feed take the place of an idle one: when the
	// feed cap (or MaxStateBytes) is full, a message for a new feed (or one
	// that grows a feed) evicts the feeds whose last update is the oldest,
	// if that update is at least FeedIdleEvict older than the message, by
	// message timestamps (so replicas evict the same feeds). Feeds
	// registered with Hub.Ensure (MARQUEE_FEEDS) are never evicted. Default
	// 1h; 0 never evicts a feed that has keys. Validate allows 0 or at
	// least 1m.
	FeedIdleEvict time.Duration `env:"FEED_IDLE_EVICT" envDefault:"1h"`
	// Conflate is the per-key conflation interval I, for every feed or per
	// feed (see Conflation for the syntax and the rule that keeps its
	// buckets on the grid). In a conflated feed, of the updates of one key
	// placed in one bucket of I (on the segment's grid, by message
	// timestamp), only the latest reaches the segment log and the
	// direct-mode history, written when the bucket ends; the state is
	// unchanged (every update is folded into it at once). Default empty:
	// off.
	Conflate Conflation `env:"CONFLATE"`
	// URLPrefix is the path prefix of segment URLs named in "next" events.
	// Default "/v1/feeds".
	URLPrefix string `env:"URL_PREFIX" envDefault:"/v1/feeds"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		SegmentLength: 60 * time.Second,
		PartLength:    time.Second,
		PartLateness:  250 * time.Millisecond,
		Keepalive:     15 * time.Second,
		History:       4096,
		Retry:         3 * time.Second,
		MaxFeeds:      64,
		MaxKeys:       10000,
		MaxFeedBytes:  16 << 20,
		MaxStateBytes: 128 << 20,
		FeedIdleEvict: time.Hour,
		URLPrefix:     "/v1/feeds",
	}
}

// Validate checks the operator-facing ranges and names the variable at fault.
func (c Config) Validate() error {
	if c.SegmentLength < 10*time.Second || c.SegmentLength > 300*time.Second {
		return fmt.Errorf("MARQUEE_SEGMENT_LENGTH must be between 10s and 300s, got %s", c.SegmentLength)
	}
	if c.SegmentLength%time.Second != 0 {
		return fmt.Errorf("MARQUEE_SEGMENT_LENGTH must be a whole number of seconds, got %s", c.SegmentLength)
	}
	if c.PartLateness > 5*time.Second {
		return fmt.Errorf("MARQUEE_PART_LATENESS must be between 0s and 5s, got %s", c.PartLateness)
	}
	if c.Keepalive < time.Second || c.Keepalive > 60*time.Second {
		return fmt.Errorf("MARQUEE_KEEPALIVE must be between 1s and 60s, got %s", c.Keepalive)
	}
	if c.MaxFeedBytes < 64<<10 || c.MaxFeedBytes > 1<<30 {
		return fmt.Errorf("MARQUEE_MAX_FEED_BYTES must be between 65536 (64 KiB) and 1073741824 (1 GiB) bytes, got %d", c.MaxFeedBytes)
	}
	if c.MaxStateBytes > 64<<30 {
		return fmt.Errorf("MARQUEE_MAX_STATE_BYTES must be at most 68719476736 (64 GiB) bytes, got %d", c.MaxStateBytes)
	}
	if c.FeedIdleEvict != 0 && c.FeedIdleEvict < time.Minute {
		return fmt.Errorf("MARQUEE_FEED_IDLE_EVICT must be 0 (never) or at least 1m, got %s", c.FeedIdleEvict)
	}
	return c.check()
}

// check enforces the structural rules that hold for every configuration,
// including the short segments tests use.
func (c Config) check() error {
	if c.SegmentLength <= 0 {
		return fmt.Errorf("MARQUEE_SEGMENT_LENGTH must be positive, got %s", c.SegmentLength)
	}
	if c.PartLength < 100*time.Millisecond || c.PartLength > c.SegmentLength || c.SegmentLength%c.PartLength != 0 {
		return fmt.Errorf("MARQUEE_PART_LENGTH must be at least 100ms and divide MARQUEE_SEGMENT_LENGTH (%s), got %s", c.SegmentLength, c.PartLength)
	}
	if c.PartLateness < 0 || 2*c.PartLateness >= c.SegmentLength {
		return fmt.Errorf("MARQUEE_PART_LATENESS must be at least 0s and less than half of MARQUEE_SEGMENT_LENGTH (%s), got %s", c.SegmentLength, c.PartLateness)
	}
	if c.Keepalive <= 0 {
		return fmt.Errorf("MARQUEE_KEEPALIVE must be positive, got %s", c.Keepalive)
	}
	if c.Retention != 0 && c.Retention < c.SegmentLength {
		return fmt.Errorf("MARQUEE_RETENTION must be 0 (two segments) or at least MARQUEE_SEGMENT_LENGTH (%s), got %s", c.SegmentLength, c.Retention)
	}
	if c.History < 1 || c.History > 1<<20 {
		return fmt.Errorf("MARQUEE_HISTORY must be between 1 and 1048576, got %d", c.History)
	}
	if c.Retry < 0 || c.Retry > time.Hour {
		return fmt.Errorf("MARQUEE_RETRY must be between 0s and 1h, got %s", c.Retry)
	}
	if !validPrefix(c.URLPrefix) {
		return fmt.Errorf("MARQUEE_URL_PREFIX must be a path like /v1/feeds (starting with /, no trailing /, letters, digits and -._~/ only), got %q", c.URLPrefix)
	}
	if c.MaxFeeds < 1 {
		return fmt.Errorf("MARQUEE_MAX_FEEDS must be at least 1, got %d", c.MaxFeeds)
	}
	if c.MaxKeys < 1 {
		return fmt.Errorf("MARQUEE_MAX_KEYS must be at least 1, got %d", c.MaxKeys)
	}
	if c.MaxFeedBytes < 1 {
		return fmt.Errorf("MARQUEE_MAX_FEED_BYTES must be at least 1, got %d", c.MaxFeedBytes)
	}
	if c.MaxStateBytes < c.MaxFeedBytes {
		return fmt.Errorf("MARQUEE_MAX_STATE_BYTES must be at least MARQUEE_MAX_FEED_BYTES (%d), got %d", c.MaxFeedBytes, c.MaxStateBytes)
	}
	if c.FeedIdleEvict < 0 {
		return fmt.Errorf("MARQUEE_FEED_IDLE_EVICT must not be negative, got %s", c.FeedIdleEvict)
	}
	return c.Conflate.check(Grid{Segment: c.SegmentLength, Part: c.PartLength})
}

// emptyExpiry is how long a feed without keys stays: the retention plus
// one segment, after which every segment it retains began empty.
func (c Config) emptyExpiry() time.Duration { return c.SegmentLength + c.retention() }

func (c Config) retention() time.Duration {
	if c.Retention == 0 {
		return 2 * c.SegmentLength
	}
	return c.Retention
}

// Parts returns the number of parts per segment.
func (c Config) Parts() int { return int(c.SegmentLength / c.PartLength) }

// validPrefix reports whether p can be written into every "next" event and
// descriptor as it is: an absolute path of unreserved characters, without
// empty, "." or ".." segments.
func validPrefix(p string) bool {
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' || len(p) > 256 {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return false
			}
		}
	}
	return true
}
