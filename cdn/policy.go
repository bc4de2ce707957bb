package cdn

import (
	"net/http"
	"strconv"
	"time"
)

// Class is a response class of the cache table.
type Class int

const (
	// OpenSegment is a segment that is still streaming (or is about to).
	OpenSegment Class = iota
	// Finished is a response whose bytes never change: a finished part,
	// an "upto" range of finished parts, a closed segment within retention.
	Finished
	// Descriptor is the feed descriptor, the feed list and the snapshot JSON.
	Descriptor
	// NoStore is the direct stream, every error, a too-early request and health.
	NoStore
	// Static is the dashboard, the browser client and their assets: public
	// for StaticMaxAge, revalidated by ETag.
	Static
)

// Policy holds the tunable numbers of the cache policy.
type Policy struct {
	// SegmentMargin is added to an open segment's remaining time in its
	// s-maxage, so that an edge keeps the complete segment a little past
	// its end for viewers that ask late. Default 10s.
	SegmentMargin time.Duration
	// ImmutableMaxAge is the max-age of finished responses. Default 24h.
	ImmutableMaxAge time.Duration
	// DescriptorMaxAge is the max-age of descriptors and snapshots; it is
	// cut so that it never crosses a segment boundary. Default 1s.
	DescriptorMaxAge time.Duration
	// StaticMaxAge is the max-age of the dashboard and client files. Default 60s.
	StaticMaxAge time.Duration
}

// DefaultPolicy returns the default policy.
func DefaultPolicy() Policy {
	return Policy{SegmentMargin: 10 * time.Second, ImmutableMaxAge: 24 * time.Hour, DescriptorMaxAge: time.Second, StaticMaxAge: time.Minute}
}

// Names of the headers the policy sets.
const (
	HeaderResponseID = "Marquee-Response-Id"
	HeaderSegment    = "Marquee-Segment"
)

// Common sets the headers of every public response: CORS for any origin
// without credentials, and the response-id header exposed to scripts.
// It never sets cookies or Vary.
func Common(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", HeaderResponseID+", "+HeaderSegment)
	h.Set("X-Content-Type-Options", "nosniff")
}

// Stream sets the headers of a text/event-stream response: no buffering at
// proxies (X-Accel-Buffering) and no transformation (no compression).
func Stream(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
}

func secs(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Set applies the cache headers of class c. now and end are used by
// OpenSegment (end = the segment's end) and Descriptor (end = the current
// segment's end, which the TTL never crosses).
func (p Policy) Set(h http.Header, c Class, now, end time.Time) {
	Common(h)
	switch c {
	case OpenSegment:
		ttl := secs(end.Sub(now) + p.SegmentMargin)
		h.Set("Cache-Control", "public, max-age=0, s-maxage="+ttl+", no-transform")
		h.Set("CDN-Cache-Control", "public, max-age="+ttl)
	case Finished:
		age := secs(p.ImmutableMaxAge)
		h.Set("Cache-Control", "public, max-age="+age+", immutable, no-transform")
		h.Set("CDN-Cache-Control", "public, max-age="+age)
	case Descriptor:
		ttl := p.DescriptorMaxAge
		if left := end.Sub(now); left < ttl {
			ttl = left
		}
		// Round down here: rounding up could cross the boundary.
		s := strconv.FormatInt(int64(max(ttl, 0)/time.Second), 10)
		h.Set("Cache-Control", "public, max-age="+s)
		h.Set("CDN-Cache-Control", "public, max-age="+s)
	case Static:
		age := secs(p.StaticMaxAge)
		h.Set("Cache-Control", "public, max-age="+age)
		h.Set("CDN-Cache-Control", "public, max-age="+age)
	default:
		h.Set("Cache-Control", "no-store")
		h.Set("CDN-Cache-Control", "no-store")
	}
}
