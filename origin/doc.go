// Package origin is marquee's HTTP face: the routes of the public API
// (feed list, descriptor, snapshot, stream-mode segments, direct-mode
// events, health), the streaming handlers that copy segment logs to
// viewers, and the HTTP metrics.
//
// Every response's cache headers come from package cdn. No handler reads a
// cookie or sets one, query strings never change a cacheable response, and
// the body of a segment is the segment log itself: the same bytes for every
// viewer.
//
// Concurrency contract: a Server is safe for concurrent use by any number
// of requests. Each streaming request runs in its own handler goroutine
// (owned by net/http) and holds nothing but an offset into a shared,
// append-only segment log; it wakes on the log's close-and-replace channel,
// writes everything new in one batch with a write deadline, and flushes
// once. Drain ends open streams in spread-out batches; a stream of a
// segment that is not finished is aborted so no edge caches it truncated.
package origin
