package origin

import (
	"fmt"
	"net"
	"runtime"
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

// BenchmarkHandOffIdleMemory reports the Go heap that n idle handed-off
// direct viewers keep live, per viewer, beyond a bare accepted socket:
// the heap after a GC with n viewers connected minus the heap with n
// connections to a listener that only accepts and holds them (both
// measured with the clients in this process, whose share cancels out).
// The process's RSS per viewer (what bench/compare reports) adds the
// garbage collector's headroom and pages not yet returned to the system.
func BenchmarkHandOffIdleMemory(b *testing.B) {
	const n = 2000
	live := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for range b.N {
		// Bare sockets: accepted and held.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var held []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		before := live()
		var clients []net.Conn
		for range n {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
		}
		eventually(b, "accepted", func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == n })
		bare := live() - before
		l.Close()
		for _, c := range append(clients, held...) {
			c.Close()
		}

		x := newHandOffServer(b, handOffConfig(), handOffSegmenter())
		before = live()
		var viewers []net.Conn
		for range n {
			c, err := net.Dial("tcp", x.ts.Listener.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /v1/feeds/prices/events HTTP/1.1\r\nHost: origin.test\r\n\r\n")
			viewers = append(viewers, c)
		}
		eventually(b, "handed off", func() bool { return counter(x.s.m.handedOff.WithLabelValues(modeDirect)) == n })
		handed := live() - before
		b.ReportMetric(float64(handed)/n, "heap-B/viewer")
		b.ReportMetric((float64(handed)-float64(bare))/n, "heap-B/viewer-above-bare-socket")
		for _, c := range viewers {
			c.Close()
		}
	}
}
