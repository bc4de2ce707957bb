package segmenter

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The broadcast benchmarks measure appending one update to a feed
// (Feed.apply: JSON framing, SSE encoding, the segment log, the direct
// history) and waking its readers until every one of them holds the new
// bytes: the per-event cost of fan-out inside the origin, without the
// socket writes (cmd/ssebench and bench/compare measure those end to end).
// Readers take a sub-slice of the shared bytes, as the origin does before
// writing it to its socket: no copy, no lock shared among readers.
//
// Readers are served the way the origin serves handed-off connections
// (origin/handoff.go): GOMAXPROCS writer goroutines, each owning a share
// of the readers' positions, wake once per event and run through their
// readers. benchmarkBroadcastPerGoroutine keeps the model the origin had
// before (and still has for responses it does not hand off: HTTP/2, TLS):
// one goroutine per reader, each woken by the channel close.

type broadcastSetup struct {
	f   *Feed
	l   *Log
	clk *fakeClock
}

func newBroadcastSetup(b *testing.B) broadcastSetup {
	cfg := testConfig()
	cfg.SegmentLength = 300 * time.Second
	cfg.Keepalive = time.Hour
	cfg.History = 4096
	clk := &fakeClock{t: time.Unix(3000, 0).Add(cfg.PartLateness)} // segment 10 opens complete
	h, err := New(cfg, clk, nil)
	if err != nil {
		b.Fatal(err)
	}
	h.Loaded()
	open(h, "prices")
	f, _ := h.Feed("prices")
	if err := f.apply(Update{Key: "AAPL", Value: benchValue, Seq: 1, Time: clk.t}, clk.t); err != nil {
		b.Fatal(err)
	}
	return broadcastSetup{f: f, l: f.Current(), clk: clk}
}

var benchValue = []byte(`{"symbol":"AAPL","price":189.23,"open":187.10,"change":2.13}`)

// run applies b.N updates; expect(n) is called before each (n readers'
// work is pending), wait after it, returning once every reader has it.
func (s broadcastSetup) run(b *testing.B, readers int, expect func(), wait func()) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		expect()
		if err := s.f.apply(Update{Key: "AAPL", Value: benchValue, Seq: uint64(i + 2), Time: s.clk.t}, s.clk.t); err != nil {
			b.Fatal(err)
		}
		wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(readers), "ns/reader")
}

// writers starts one goroutine per P, each owning readers/P positions; on
// every event each wakes once (the source's close-and-replace channel),
// has step take every one of its readers' new bytes, and reports done.
// step returns false when a reader got nothing (a lost wake-up: the
// benchmark fails).
func writers(b *testing.B, readers int, wait func() <-chan struct{}, step func(pos []uint64) bool) (expect, round, stop func()) {
	w := runtime.GOMAXPROCS(0)
	var done sync.WaitGroup
	quit := make(chan struct{})
	var mu sync.Mutex
	var bad bool
	var started sync.WaitGroup
	started.Add(w)
	for i := range w {
		n := readers / w
		if i < readers%w {
			n++
		}
		go func() {
			pos := make([]uint64, n)
			step(pos) // positions at the current end
			wake := wait()
			started.Done()
			for {
				select {
				case <-wake:
				case <-quit:
					return
				}
				wake = wait()
				if !step(pos) {
					mu.Lock()
					bad = true
					mu.Unlock()
				}
				done.Done()
			}
		}()
	}
	started.Wait()
	expect = func() { done.Add(w) }
	round = done.Wait
	stop = func() {
		close(quit)
		if bad {
			b.Fatal("a reader missed an update")
		}
	}
	return expect, round, stop
}

// benchmarkBroadcast: the segment log (stream mode).
func benchmarkBroadcast(b *testing.B, readers int) {
	s := newBroadcastSetup(b)
	l := s.l
	wait := func() <-chan struct{} { _, _, wake := l.Since(l.Len()); return wake }
	step := func(pos []uint64) bool {
		ok := true
		for i, off := range pos {
			data, _, _ := l.Since(int(off))
			if len(data) == 0 && off != 0 {
				ok = false
			}
			pos[i] = off + uint64(len(data))
		}
		return ok
	}
	expect, round, stop := writers(b, readers, wait, step)
	s.run(b, readers, expect, round)
	stop()
}

// benchmarkDirectBroadcast: the direct-mode history, read lock-free.
func benchmarkDirectBroadcast(b *testing.B, readers int) {
	s := newBroadcastSetup(b)
	f := s.f
	wait := func() <-chan struct{} { return f.Direct().Wake() }
	step := func(pos []uint64) bool {
		v := f.Direct()
		ok := true
		for i, cursor := range pos {
			if cursor == 0 {
				pos[i] = v.Seq()
				continue
			}
			data, last, resumed := v.Since(cursor)
			if !resumed || len(data) == 0 {
				ok = false
			}
			pos[i] = last
		}
		return ok
	}
	expect, round, stop := writers(b, readers, wait, step)
	s.run(b, readers, expect, round)
	stop()
}

// benchmarkBroadcastPerGoroutine: one goroutine per reader (the origin's
// model before the hand-off), on the segment log.
func benchmarkBroadcastPerGoroutine(b *testing.B, readers int) {
	s := newBroadcastSetup(b)
	l := s.l
	var consumed, started sync.WaitGroup
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
	s.run(b, readers, func() { consumed.Add(readers) }, consumed.Wait)
	close(stop)
}

func BenchmarkBroadcast_1Readers(b *testing.B)     { benchmarkBroadcast(b, 1) }
func BenchmarkBroadcast_100Readers(b *testing.B)   { benchmarkBroadcast(b, 100) }
func BenchmarkBroadcast_10000Readers(b *testing.B) { benchmarkBroadcast(b, 10000) }

func BenchmarkDirectBroadcast_1Readers(b *testing.B)     { benchmarkDirectBroadcast(b, 1) }
func BenchmarkDirectBroadcast_100Readers(b *testing.B)   { benchmarkDirectBroadcast(b, 100) }
func BenchmarkDirectBroadcast_10000Readers(b *testing.B) { benchmarkDirectBroadcast(b, 10000) }

func BenchmarkBroadcastPerGoroutine_1Readers(b *testing.B) { benchmarkBroadcastPerGoroutine(b, 1) }
func BenchmarkBroadcastPerGoroutine_100Readers(b *testing.B) {
	benchmarkBroadcastPerGoroutine(b, 100)
}
func BenchmarkBroadcastPerGoroutine_10000Readers(b *testing.B) {
	benchmarkBroadcastPerGoroutine(b, 10000)
}

func BenchmarkEncodeUpdate(b *testing.B) {
	v := []byte(`{"symbol":"AAPL","price":189.23,"open":187.10,"change":2.13}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = encodeUpdate(Update{Key: "AAPL", Value: v, Seq: uint64(i), Time: time.Unix(0, 0)}, uint64(i-1))
	}
}

// benchmarkApply measures Hub.Apply of a ticker at 1,000 msg/s of stream
// time (one update per millisecond, spread over keys), with conflation
// every I (0: off), including the flushes, keepalives and rotations the
// stream time passes. written/op is the share of updates that reached the
// segment log as a frame.
func benchmarkApply(b *testing.B, every time.Duration, keys int) {
	cfg := testConfig()
	cfg.SegmentLength = 60 * time.Second
	cfg.History = 4096
	cfg.Conflate = Conflation{Every: every}
	t0 := time.Unix(3000, 0).Add(cfg.PartLateness)
	clk := &fakeClock{t: t0}
	h, err := New(cfg, clk, nil)
	if err != nil {
		b.Fatal(err)
	}
	h.Loaded()
	open(h, "prices")
	names := make([]string, keys)
	for i := range names {
		names[i] = "SYM" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		clk.Set(now)
		if err := h.Apply("prices", Update{Key: names[i%keys], Value: benchValue, Seq: uint64(i + 1), Time: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := h.Stats()
	b.ReportMetric(1-float64(st.Conflated)/float64(b.N), "written/op")
}

func BenchmarkApply_Plain_1Key(b *testing.B)          { benchmarkApply(b, 0, 1) }
func BenchmarkApply_Conflated500ms_1Key(b *testing.B) { benchmarkApply(b, 500*time.Millisecond, 1) }
func BenchmarkApply_Plain_100Keys(b *testing.B)       { benchmarkApply(b, 0, 100) }
func BenchmarkApply_Conflated500ms_100Keys(b *testing.B) {
	benchmarkApply(b, 500*time.Millisecond, 100)
}
