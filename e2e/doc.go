// Package e2e holds marquee's end-to-end tests, which run every part for
// real in-process: an embedded NATS server with JetStream, the feed
// consumer, the segmenter and the origin on loopback HTTP (see
// internal/testenv), and where needed a real Varnish edge (e2e/edge) or a
// real headless Chromium (e2e/browser). It has no non-test code.
package e2e
