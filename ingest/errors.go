package ingest

import "errors"

// Why a signature check failed (see verifier.verify). Each is its own
// result label of marquee_ingest_requests_total.
var (
	errMissingHeaders = errors.New("ingest: webhook-id, webhook-timestamp or webhook-signature missing")
	errBadHeaders     = errors.New("ingest: webhook-id or webhook-timestamp malformed")
	errStale          = errors.New("ingest: webhook-timestamp outside the tolerance")
	errBadSignature   = errors.New("ingest: no matching signature")
)

// ErrNeedsJetStream is returned by New without a JetStream context: with
// core NATS a retried delivery could not be deduplicated.
var ErrNeedsJetStream = errors.New("ingest: needs JetStream")
