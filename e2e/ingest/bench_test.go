package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"marquee/internal/app"
)

// BenchmarkIngest: signed POSTs to a real app (embedded JetStream, file
// store) answered after every PubAck, one update per request and batches
// of 1,000. ns/op is the whole request, as a sender sees it on loopback.
//
//	go test -run '^$' -bench Ingest -benchtime 200x -count 3 ./e2e/ingest
func BenchmarkIngest(b *testing.B) {
	_, o := start(b, time.Now, func(c *app.Config) { c.Ingest.SenderRate = 0 })
	for _, size := range []int{1, 1000} {
		body := `{"key":"AAPL","value":{"price":189.23}}`
		if size > 1 {
			items := make([]string, size)
			for i := range items {
				items[i] = fmt.Sprintf(`{"key":"S%d","value":{"price":%d}}`, i, i)
			}
			body = `{"updates":[` + strings.Join(items, ",") + `]}`
		}
		b.Run(fmt.Sprintf("updates=%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for i := 0; b.Loop(); i++ {
				a := send(b, o, signed{feed: "bench", id: fmt.Sprintf("bench_%d_%d", size, i), body: body})
				if a.code != 200 {
					b.Fatalf("%d %s", a.code, a.body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/update")
		})
	}
}
