// Package probe is the logic of cmd/cdnprobe: it opens viewers through a CDN
// edge the way marquee's browser client does and tells from what they
// received whether the edge collapses them into one origin response per
// segment (stream mode, [Stream]) or per part (parts mode, [Parts]), whether
// it streams or buffers, how long late joiners and hand-overs take, and
// which mode suits the edge ([Recommend]).
//
// Stream-mode viewers open the current segment, then each next one named by
// its "next" event. Parts-mode viewers read the feed descriptor, ask for
// upto/{k} of the part in progress, then parts/{k+1}, {k+2}, … one request
// outstanding, and keep "the snapshot, then every update with a higher seq"
// as their state.
//
// Clocks: the probe compares arrival times (local clock) with times the
// origin wrote into the stream (the snapshot's and updates' "time", origin
// and NATS clock). It estimates the offset between the clocks as the
// tightest lower bound those times give (nothing arrives before it was
// written), so the smallest delivery delay it reports is zero by
// construction and every other delay is relative to it.
//
// Files: config.go (Config, defaults, request variants), client.go (the
// HTTP client, requests, feed list and descriptor), stream.go (stream-mode
// viewers and verdict), parts.go (parts-mode viewers, their state and
// verdict), clock.go (clock offset calibration), collapse.go (collapse
// judging, shared by both modes), buffering.go (streaming or buffering),
// recommend.go (the choice of mode), report.go (human-readable reports),
// durations.go (samples of durations).
//
// Concurrency: Stream, Parts and Both run their viewers in goroutines they
// own and wait for them before returning; a result belongs to the caller.
// ClassifyBuffering and Recommend are pure.
package probe
