// Package openapi holds marquee's OpenAPI 3 description: the public read
// API (every route of cdn.PublicRoutes) and the ingest API. The origin
// serves it at GET /v1/openapi.json, the ingest listener too. A test
// (marquee/e2e/ingest) checks it against the route table and against real
// responses of a running app with an OpenAPI validator that only tests
// import.
//
// It imports nothing of marquee's; JSON is safe for concurrent use.
package openapi

import _ "embed"

//go:embed openapi.json
var doc []byte

// JSON returns the description. The slice is shared: do not modify it.
func JSON() []byte { return doc }
