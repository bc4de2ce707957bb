// Package ingest is marquee's signed webhook ingest: an HTTP listener of
// its own (MARQUEE_INGEST_ADDR, never behind the CDN) that takes POST
// /v1/ingest/{feed} with one update ({"key": K, "value": {...}|null}) or a
// batch ({"updates": [...]}) and publishes each update to JetStream on the
// subject the feed consumer reads, "<prefix>.<feed>.<key>".
//
// It owns:
//
//   - Standard Webhooks signature checks (webhook-id, webhook-timestamp,
//     webhook-signature; HMAC-SHA256 with several secrets valid at once, a
//     timestamp tolerance both ways, constant-time comparison), written
//     with the standard library and tested against the reference library;
//   - validation with the consumer's own rules (feed.Parse on the subject
//     and body each update will have), so an update is refused here for
//     exactly the reasons the consumer would drop it;
//   - idempotent publishing: the webhook-id (in a batch webhook-id:index)
//     is the JetStream message id, so a retried or replayed delivery within
//     the stream's duplicate window (Config.DuplicateWindow) is stored
//     once; the answer comes only after every acknowledgement, within
//     Config.RequestTimeout;
//   - per-sender token buckets by remote address, with bounded memory;
//   - its HTTP server's timeouts and a connection cap;
//   - the metrics of all of it (NewMetrics), every result pre-created.
//
// Concurrency: a Server's handler runs on net/http's goroutines; the
// verifier is immutable, the rate limiter has its own lock, and the
// JetStream context is safe for concurrent use. Serve runs on the caller's
// goroutine (internal/app owns it) and returns after Shutdown or Close;
// both are safe to call more than once. The package never reads the
// environment: Config carries env tags that cmd/marquee parses with the
// MARQUEE_ prefix.
package ingest
