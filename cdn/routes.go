package cdn

// This file is data only: the routes marquee serves and how an edge in front
// of it must treat each one. The edge configurations that ship with marquee
// (cdn/varnish, terraform/cloudflare, terraform/cloudfront) are checked
// against it by tests. origin builds its public mux from PublicRoutes (and
// refuses to start with a route it has no handler for, or a handler not
// listed here); cdn/tfcheck checks that AdminRoutes lists exactly the GET
// routes registered in cmd/marquee.

// EdgeClass is how an edge must treat the requests of a route.
type EdgeClass string

// The edge classes.
const (
	// EdgeSegment is stream mode's segments and parts mode's parts and
	// "upto" ranges: the same bytes for every viewer, cached under the path
	// alone (no cookie, header or query string in the cache key) for as long
	// as the origin's s-maxage / CDN-Cache-Control says, never compressed or
	// otherwise transformed (text/event-stream, no-transform).
	EdgeSegment EdgeClass = "segment"
	// EdgeShort is the feed list, the feed descriptor and the snapshot: JSON,
	// "public, max-age=1", cached under the path alone for as long as the
	// origin says and never served stale.
	EdgeShort EdgeClass = "short"
	// EdgeStatic is the dashboard, the browser client and their assets:
	// public for a short while, cached under the path alone; the edge may
	// compress them.
	EdgeStatic EdgeClass = "static"
	// EdgePass is direct mode and health: never cached (the origin marks
	// them no-store), passed to the origin with what they need
	// (Last-Event-ID for direct mode), streamed as they arrive.
	EdgePass EdgeClass = "pass"
	// EdgeDeny is the admin listener's metrics: never reachable through an
	// edge. Edges refuse the path even if pointed at the admin listener.
	EdgeDeny EdgeClass = "deny"
)

// Route is one GET route and how an edge must treat it.
type Route struct {
	// Pattern is the net/http.ServeMux pattern the route is registered
	// with, without its "GET " method prefix.
	Pattern string
	// Edge is how an edge must treat it.
	Edge EdgeClass
	// Stream is true when the body is text/event-stream: an edge must never
	// compress or buffer it.
	Stream bool
}

// PublicRoutes are the GET routes of the public listener (MARQUEE_ADDR), the
// one a CDN is pointed at.
var PublicRoutes = []Route{
	{Pattern: "/{$}", Edge: EdgeStatic},
	{Pattern: "/v1/client.js", Edge: EdgeStatic},
	{Pattern: "/v1/board.js", Edge: EdgeStatic},
	{Pattern: "/assets/{file}", Edge: EdgeStatic},
	{Pattern: "/v1/feeds", Edge: EdgeShort},
	{Pattern: "/v1/feeds/{feed}", Edge: EdgeShort},
	{Pattern: "/v1/feeds/{feed}/snapshot", Edge: EdgeShort},
	{Pattern: "/v1/feeds/{feed}/segments/{n}", Edge: EdgeSegment, Stream: true},
	{Pattern: "/v1/feeds/{feed}/segments/{n}/parts/{k}", Edge: EdgeSegment, Stream: true},
	{Pattern: "/v1/feeds/{feed}/segments/{n}/upto/{k}", Edge: EdgeSegment, Stream: true},
	{Pattern: "/v1/feeds/{feed}/events", Edge: EdgePass, Stream: true},
	// The protected feeds' twins of the feed routes (MARQUEE_PROTECTED_FEEDS):
	// the token of the current window as a path segment after the feed's
	// name, under a literal "t". Treated like their public twins: the
	// token is part of the path, so it is part of the cache key, and all
	// viewers of one window share one object per segment. The origin
	// answers an invalid token 403 and a public feed's tokened path 404,
	// both no-store.
	{Pattern: "/v1/feeds/{feed}/t/{token}", Edge: EdgeShort},
	{Pattern: "/v1/feeds/{feed}/t/{token}/snapshot", Edge: EdgeShort},
	{Pattern: "/v1/feeds/{feed}/t/{token}/segments/{n}", Edge: EdgeSegment, Stream: true},
	{Pattern: "/v1/feeds/{feed}/t/{token}/segments/{n}/parts/{k}", Edge: EdgeSegment, Stream: true},
	{Pattern: "/v1/feeds/{feed}/t/{token}/segments/{n}/upto/{k}", Edge: EdgeSegment, Stream: true},
	{Pattern: "/v1/feeds/{feed}/t/{token}/events", Edge: EdgePass, Stream: true},
	{Pattern: "/healthz", Edge: EdgePass},
	{Pattern: "/readyz", Edge: EdgePass},
}

// AdminRoutes are the GET routes of the admin listener (MARQUEE_ADMIN_ADDR,
// loopback by default). No edge should ever be pointed at it; the edge
// configurations still deny /metrics in case one is.
var AdminRoutes = []Route{
	{Pattern: "/metrics", Edge: EdgeDeny},
	{Pattern: "/healthz", Edge: EdgePass},
	{Pattern: "/readyz", Edge: EdgePass},
}
