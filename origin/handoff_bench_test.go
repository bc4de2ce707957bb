package origin

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// benchmarkDirectFanout measures one update delivered to n direct viewers
// on real loopback sockets: Apply, the wake-up, the writes, and the
// viewers (in this process: raw sockets, each read by a goroutine into a
// fixed buffer, counting the events' blank lines) having read it. One op
// is one update until every viewer has it. The viewers' reads share the
// CPU with the server, so ns/op is an upper bound of the server's cost;
// allocs/op are the server's (the viewers allocate nothing per event).
// bench/compare measures the server alone, out of process.
func benchmarkDirectFanout(b *testing.B, n int, handOff bool) {
	cfg := handOffConfig()
	cfg.HandOff = handOff
	scfg := handOffSegmenter()
	scfg.Keepalive = time.Hour
	x := newHandOffServer(b, cfg, scfg)
	var got sync.WaitGroup
	var conns []net.Conn
	for range n {
		c := x.rawOpen(b, "/v1/feeds/prices/events").conn
		conns = append(conns, c)
	}
	// Every viewer first reads its response header, retry and snapshot
	// (two events), then one event per update.
	got.Add(n)
	for _, c := range conns {
		go func() {
			var buf [4096]byte
			var prev byte
			events := 0
			for {
				k, err := c.Read(buf[:])
				if err != nil {
					return
				}
				for _, ch := range buf[:k] {
					// A blank line ends an event; the header's and the
					// chunks' CRLFs never make "\n\n".
					if ch == '\n' && prev == '\n' {
						if events++; events >= 2 {
							got.Done()
						}
					}
					prev = ch
				}
			}
		}()
	}
	got.Wait()
	if handOff {
		eventually(b, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == float64(n) })
	}
	value := `{"symbol":"AAPL","price":189.23,"open":187.10,"change":2.13}`
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got.Add(n)
		x.update("AAPL", value)
		got.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/viewer")
	for _, c := range conns {
		c.Close()
	}
}

func BenchmarkDirectFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		for _, handOff := range []bool{true, false} {
			name := "handler"
			if handOff {
				name = "handoff"
			}
			b.Run(fmt.Sprintf("%s_%dViewers", name, n), func(b *testing.B) { benchmarkDirectFanout(b, n, handOff) })
		}
	}
}
