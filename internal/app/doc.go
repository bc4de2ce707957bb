// Package app is marquee's one wiring: it constructs every part of the
// program (embedded NATS when no URL is set, the NATS connection, the
// segmenter hub, the feed source, the demo publisher, the origin and its
// listeners), starts them in order, and tears them down in reverse. The
// binary (cmd/marquee) parses the environment and runs an App; every
// end-to-end test runs the same App through internal/testenv, so tests
// exercise the program itself, not a copy of its wiring.
//
// Start-up order: the hub is born loading (segments closed); the feed source
// replays the stored state into it and calls Loaded through the sink when
// the replay is complete, which opens every feed's current segment with the
// whole state in its snapshot. Nothing polls.
//
// Teardown (Close): readiness 503 and the origin's drain (streams ended in
// spread batches, unfinished segments aborted), the hub aborted, the
// listeners shut down, background goroutines stopped and waited for, the
// NATS connection closed, the embedded server stopped.
//
// Several Apps may run in one process (no globals; each has its own
// Prometheus registry unless one is injected).
//
// Concurrency: New, then Run once; Close may be called from any goroutine,
// any number of times, before, during or after Run.
package app
