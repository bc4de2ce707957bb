package ingest

import "github.com/prometheus/client_golang/prometheus"

// result is the outcome of one ingest request, a label value of
// marquee_ingest_requests_total (every one pre-created with 0).
type result uint8

const (
	resultOK             result = iota // 200: every update acknowledged by JetStream
	resultMissingHeaders               // 401: a Standard Webhooks header is missing
	resultBadHeaders                   // 401: webhook-id or webhook-timestamp malformed
	resultStale                        // 401: webhook-timestamp outside the tolerance
	resultBadSignature                 // 401: no signature matches any secret
	resultTooLarge                     // 413: body or batch too large
	resultBadRequest                   // 400: bad JSON, key or value
	resultUnknownFeed                  // 404: feed not in the allow-list
	resultNotFound                     // 404: no such path
	resultMethod                       // 405: not POST (or GET of the description)
	resultRateLimited                  // 429: sender over its rate
	resultUnavailable                  // 503: JetStream did not take the message
	resultTimeout                      // 504: JetStream did not acknowledge in time
	resultOpenAPI                      // 200: GET /v1/openapi.json

	numResults
)

var resultNames = [numResults]string{
	resultOK:             "ok",
	resultMissingHeaders: "missing_headers",
	resultBadHeaders:     "bad_headers",
	resultStale:          "stale_timestamp",
	resultBadSignature:   "bad_signature",
	resultTooLarge:       "too_large",
	resultBadRequest:     "bad_request",
	resultUnknownFeed:    "unknown_feed",
	resultNotFound:       "not_found",
	resultMethod:         "method",
	resultRateLimited:    "rate_limited",
	resultUnavailable:    "unavailable",
	resultTimeout:        "timeout",
	resultOpenAPI:        "openapi",
}

func (r result) String() string { return resultNames[r] }

// Metrics are the ingest listener's metrics. Make one per process with
// NewMetrics. Safe for concurrent use.
type Metrics struct {
	requests   [numResults]prometheus.Counter
	accepted   prometheus.Counter
	duplicates prometheus.Counter
	refused    prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). Every result is pre-created with 0.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_ingest_updates_accepted_total",
			Help: "Updates received on the ingest listener and newly stored in JetStream.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_ingest_updates_duplicate_total",
			Help: "Updates received on the ingest listener that JetStream already held (a retried or replayed webhook-id within the duplicate window).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_ingest_connections_refused_total",
			Help: "Connections to the ingest listener closed at once because MARQUEE_INGEST_MAX_CONNECTIONS were open.",
		}),
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marquee_ingest_requests_total",
		Help: "Requests to the ingest listener, by result: ok, missing_headers, bad_headers, stale_timestamp, bad_signature (401), too_large (413), bad_request (400), unknown_feed, not_found (404), method (405), rate_limited (429), unavailable (503), timeout (504), openapi (the description).",
	}, []string{"result"})
	for r := range numResults {
		m.requests[r] = requests.WithLabelValues(r.String())
	}
	if reg != nil {
		reg.MustRegister(requests, m.accepted, m.duplicates, m.refused)
	}
	return m
}
