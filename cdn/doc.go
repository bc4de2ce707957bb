// Package cdn is marquee's cache policy: the one place that decides which
// headers each class of response carries (see the cache table in
// DESIGN.md), so that a CDN collapses viewers' requests for the same
// segment or part into one origin fetch and never caches anything private,
// per-viewer, truncated or erroneous. It also holds the route table
// (routes.go) and the edge configurations (cdn/varnish), which cdn/tfcheck
// checks against it. The probe that checks a live edge is cdn/probe.
//
// The policy and route functions are pure and safe for concurrent use.
package cdn
