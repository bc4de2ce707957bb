// Package cdn is marquee's cache policy: the one place that decides which
// headers each class of response carries (see the cache table in
// DESIGN.md), so that a CDN collapses viewers' requests for the same
// segment or part into one origin fetch and never caches anything private,
// per-viewer, truncated or erroneous. It also holds the route table
// (routes.go), the edge configurations (cdn/varnish) and the probe logic
// used by cmd/cdnprobe: stream mode (probe.go), parts mode (probe_parts.go)
// and the choice between them (recommend.go).
//
// The policy and route functions are pure and safe for concurrent use;
// Probe and ProbeParts run their viewers in goroutines they own and wait
// for before returning.
package cdn
