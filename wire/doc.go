// Package wire is marquee's public contract: the Go type of every JSON body
// the origin serves and of every SSE event payload it writes. Server,
// probe, load generator and tests all use these types, so that a renamed or
// retyped field fails at compile time, not in production.
//
// The origin does not encode events with encoding/json: segmenter has fast
// hand-written encoders for update, snapshot and next data, and a fuzz test
// in segmenter checks that their output decodes strictly (no unknown field,
// no missing field) into the types here with the same values.
//
// Units: durations are float seconds (SegmentLength, PartLength,
// Keepalive); instants are integer unix milliseconds (ServerTime,
// SegmentStart, SegmentEnd, and every "time"); sequences are JetStream
// stream sequences (see DESIGN.md, "Sequence numbers").
//
// The package has no state; it imports only the standard library.
package wire
