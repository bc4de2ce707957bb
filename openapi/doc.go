// Package openapi holds marquee's OpenAPI 3 description: the public read
// API (every route of cdn.PublicRoutes) and the ingest API. The origin
// serves it at GET /v1/openapi.json, the ingest listener too. A test
// (marquee/e2e/core) checks it against the route table and against real
// responses of a running app with an OpenAPI validator that only tests
// import.
//
// It imports nothing of marquee's; JSON is safe for concurrent use.
//
// TODO(tokens): when the protected-feed routes land in cdn.PublicRoutes,
// TestOpenAPIPathsMatchRouteTable fails until openapi.json describes them:
// /v1/feeds/{feed}/t/{token} (descriptor, with "protected" and
// "token_expires"), .../t/{token}/snapshot, .../t/{token}/segments/{n},
// .../segments/{n}/parts/{k}, .../segments/{n}/upto/{k} and
// .../t/{token}/events, each with 403 (missing, malformed, unknown key, bad
// mac, expired, not yet valid) and 404 (public feed); FeedRef gains
// "protected" and its "url" becomes optional; every untokened route of a
// protected feed answers 403.
package openapi

import _ "embed"

//go:embed openapi.json
var doc []byte

// JSON returns the description. The slice is shared: do not modify it.
func JSON() []byte { return doc }
