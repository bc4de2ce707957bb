package ingest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsLint: the exposition passes promlint and every result is
// there before the first request.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if got := testutil.CollectAndCount(reg, "marquee_ingest_requests_total"); got != int(numResults) {
		t.Errorf("%d results pre-created, want %d", got, numResults)
	}
}
