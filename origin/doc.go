// Package origin is marquee's HTTP face: the routes of the public API
// (feed list, descriptor, snapshot, stream-mode segments, parts, direct-mode
// events, health), the streaming handlers that copy segment logs to
// viewers, and the HTTP metrics.
//
// The mux is built from the route table cdn.PublicRoutes: New registers
// the GET route of every entry and panics when a route has no handler or a
// handler no route, so no route exists without an edge policy. Every
// response's cache headers come from package cdn. No handler reads a cookie
// or sets one, query strings never change a cacheable response, and the
// body of a segment is the segment log itself: the same bytes for every
// viewer.
//
// Concurrency contract: a Server is safe for concurrent use by any number
// of requests. Each streaming request starts in its own handler goroutine
// (owned by net/http) and holds nothing but a position in a shared,
// immutable view (an offset into the append-only segment log, a sequence
// in the feed's direct-mode history); it wakes on the source's
// close-and-replace channel, writes everything new in one batch with a
// write deadline, and flushes once. A live stream-mode or direct-mode
// response over plain HTTP/1.1 is then handed off (handoff.go,
// Config.HandOff): its connection is hijacked and owned by the writers of
// its source, at most GOMAXPROCS goroutines per feed or open segment that
// origin starts and that end by themselves once their viewers are gone.
// Each wakes once per change and writes what is new to each of its
// connections from the shared bytes without blocking; a connection whose
// socket is full finishes on a goroutine of its own with the write
// deadline (the slow path) and rejoins once caught up. One epoll watcher
// notices hung-up peers. A handed-off stream is closed, and counted, by
// the hand-off, with the same reasons as in its handler.
//
// Every streaming response (and held part request) is admitted under the
// same lock under which Drain sets "draining", so a stream is either
// refused with 503 or ended by Drain. Each has a context, a child of the
// request's, cancelled with a cause: the client went away, Drain ended it,
// or the handler returned; every wait of a handler selects on it, and
// waits for something that may not happen (a segment or part the
// segmenter has yet to open or record) are also bounded in time. Drain
// ends open streams in spread-out batches (a stream of a segment that is
// not finished is aborted so no edge caches it truncated) and waits for a
// channel closed when the last one ends.
//
// Refusing: before any route runs, a request whose path is not spelt the
// one way marquee spells it (percent-encoding, empty, "." or ".."
// segments), a method other than GET, HEAD and OPTIONS, and a request that
// announces a body are refused (4xx, no-store, counted by reason in
// marquee_http_refused_total). Segment and part numbers are checked
// against the servable window (retained segments, the current one, the
// next) by integer comparison before any time is computed from them.
// Stream mode is refused over HTTP/1.0 except for finished segments.
// Nothing refused is held, takes a stream slot or may be cached.
// LimitListener caps the connections of a listener.
//
// A feed the segmenter removes (evicted or expired) ends like a feed at
// shutdown: streams of its open segment are aborted, held part requests
// answer 503, direct viewers are closed (reason "aborted"); its URLs then
// answer 404, no-store, as for any unknown feed. Direct mode writes the
// feed's cached snapshot frame as it is, never a copy per viewer.
package origin
