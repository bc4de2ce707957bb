package segmenter

import (
	"sync"
	"testing"
	"time"
)

// benchmarkBroadcast measures appending one update to a segment log and
// waking readers until every one of them has copied it: the per-event cost
// of fan-out inside the origin. Readers only take a sub-slice (no copy), as
// an HTTP handler does before writing it to its socket.
func benchmarkBroadcast(b *testing.B, readers int) {
	cfg := testConfig()
	cfg.SegmentLength = 300 * time.Second
	cfg.Keepalive = time.Hour
	clk := &fakeClock{t: time.Unix(3000, 0).Add(cfg.PartLateness)} // segment 10 opens complete
	h, err := New(cfg, clk, nil)
	if err != nil {
		b.Fatal(err)
	}
	h.Loaded()
	open(h, "prices")
	f, _ := h.Feed("prices")
	l := f.Current()

	var consumed sync.WaitGroup
	var started sync.WaitGroup
	stop := make(chan struct{})
	started.Add(readers)
	for range readers {
		go func() {
			off := l.Len()
			started.Done()
			for {
				data, _, wake := l.Since(off)
				if len(data) > 0 {
					off += len(data)
					consumed.Done()
					continue
				}
				select {
				case <-wake:
				case <-stop:
					return
				}
			}
		}()
	}
	started.Wait()
	value := []byte(`{"symbol":"AAPL","price":189.23,"open":187.10,"change":2.13}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		consumed.Add(readers)
		if err := f.apply(Update{Key: "AAPL", Value: value, Seq: uint64(i + 1), Time: clk.t}, clk.t); err != nil {
			b.Fatal(err)
		}
		consumed.Wait()
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(readers), "ns/reader")
}

func BenchmarkBroadcast_1Readers(b *testing.B)     { benchmarkBroadcast(b, 1) }
func BenchmarkBroadcast_100Readers(b *testing.B)   { benchmarkBroadcast(b, 100) }
func BenchmarkBroadcast_10000Readers(b *testing.B) { benchmarkBroadcast(b, 10000) }

func BenchmarkEncodeUpdate(b *testing.B) {
	v := []byte(`{"symbol":"AAPL","price":189.23,"open":187.10,"change":2.13}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = encodeUpdate(Update{Key: "AAPL", Value: v, Seq: uint64(i), Time: time.Unix(0, 0)}, uint64(i-1))
	}
}
