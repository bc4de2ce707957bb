// Package sse owns the Server-Sent Events wire format ("text/event-stream"):
// encoding events, comments and retry hints safely, and decoding a stream
// exactly as the WHATWG HTML standard's "interpreting an event stream"
// algorithm does (the rules a browser's EventSource follows).
//
// The encoder refuses input it cannot write faithfully (an id or event type
// containing a line break, an id containing NUL, text that is not valid UTF-8)
// rather than emit bytes that a client would parse as a different event. Data
// is split on LF, CR and CRLF into one "data:" line each, so a client receives
// the payload with every line break turned into LF.
//
// The decoder accepts LF, CRLF and lone CR line endings (also when a CRLF pair
// is split across two reads), skips one leading byte order mark, replaces
// invalid UTF-8 with U+FFFD as the WHATWG UTF-8 decoder does, and never
// dispatches an event that was not ended by a blank line.
//
// Concurrency: AppendEvent, AppendComment and AppendRetry are pure functions
// and safe to call from any goroutine. A Decoder is not safe for concurrent
// use; one goroutine reads one stream.
package sse
