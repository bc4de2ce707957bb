// Package replicas tests the production topology in-process: a three-node
// JetStream cluster (internal/natstest) with an R3 stream, two origin
// replicas (two internal/app Apps), and viewers that take their parts and
// reconnects from both. Faults: a replica reading late across part
// boundaries, the stream leader killed and its node restarted, the stream
// deleted and recreated. With per-key conflation on (MARQUEE_CONFLATE), two
// replicas on one embedded server serve the same conflated bytes of a key
// updated 1,000 times a second.
package replicas
