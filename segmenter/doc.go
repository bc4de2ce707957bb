// Package segmenter owns the state of every feed and turns it into segment
// logs: for each feed, the latest JSON value per key, a wall-clock segment
// grid of length D (segment n covers [n·D, (n+1)·D)), and for each open or
// recently closed segment an append-only log of already-encoded SSE frames.
//
// A segment log starts with a retry field and a snapshot event, then holds an
// update event per applied change, a keepalive comment whenever nothing was
// written for the keepalive interval, and at its end a "next" event naming
// the next segment's URL. Every viewer of a segment reads the same bytes.
// The log also records the byte offset of each part boundary (parts mode) and
// the feed keeps a bounded history of update frames (direct mode).
//
// Concurrency contract: Hub and Feed methods are safe for concurrent use.
// Writers (Apply, Tick) serialise on the feed's mutex. Readers never block
// writers for longer than a slice-header copy: Log.Since returns a sub-slice
// of the append-only buffer (bytes below the returned length never change)
// and a channel that is closed, then replaced, on the next change
// (close-and-replace broadcast). There is no per-reader queue and no
// per-reader encoding; a slow reader only falls behind in its own offset.
//
// The package imports no networking: the feed consumer calls Apply, the HTTP
// layer reads logs. Time comes from an injected Clock; Hub.Run drives
// rotation, keepalives and part boundaries with timers, and tests may call
// Hub.Tick with any time instead.
package segmenter
