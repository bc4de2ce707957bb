package segmenter

import (
	"math"
	"testing"
	"time"
)

// TestGridOverflow: segment numbers whose start lies beyond the range of
// UnixNano (with 60 s segments: from 153,722,868 on, nine digits) saturate
// instead of wrapping around to some time near now.
func TestGridOverflow(t *testing.T) {
	g := Grid{Segment: time.Minute, Part: time.Second}
	last := int64(math.MaxInt64 / int64(time.Minute)) // 153722867
	if got, want := g.Start(last), time.Unix(0, last*int64(time.Minute)); !got.Equal(want) {
		t.Errorf("Start(%d) = %v, want %v", last, got, want)
	}
	now := time.Unix(1_767_225_600, 0) // 2026-01-01
	for _, n := range []int64{last + 1, 300_000_000, 999_999_999, 9_999_999_999_999, 999_999_999_999_999, math.MaxInt64} {
		if s := g.Start(n); s.Before(now) || !s.Equal(gridMax) {
			t.Errorf("Start(%d) = %v, want the saturated %v", n, s, gridMax)
		}
		if e := g.End(n); !e.Equal(gridMax) {
			t.Errorf("End(%d) = %v, want %v", n, e, gridMax)
		}
		if pe := g.PartEnd(n, 59); pe.Before(now) {
			t.Errorf("PartEnd(%d, 59) = %v, before now", n, pe)
		}
		if k := g.PartIndex(n, now); k >= 0 {
			t.Errorf("PartIndex(%d, now) = %d, want negative (far in the future)", n, k)
		}
	}
	if s := g.Start(math.MinInt64); !s.Equal(gridMin) {
		t.Errorf("Start(MinInt64) = %v", s)
	}
	if got := g.Index(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got != last {
		t.Errorf("Index(year 3000) = %d, want the last exact segment %d", got, last)
	}
	if got := g.PartEnd(0, math.MaxInt); !got.Equal(gridMax) {
		t.Errorf("PartEnd(0, MaxInt) = %v", got)
	}
}

// FuzzGrid: for any segment and part numbers, any instant and any valid
// lengths, Grid never panics, Start is monotonic in n, a segment ends no
// earlier than it starts, parts end in order inside the range, and
// wherever n·D is representable Grid is exact: Start(n) is n·D and
// Index(Start(n)) is n.
func FuzzGrid(f *testing.F) {
	f.Add(int64(29466120), 3, int64(1_767_225_600_000_000_000), uint16(60), uint8(60))
	f.Add(int64(300_000_000), 0, int64(0), uint16(60), uint8(1))
	f.Add(int64(math.MaxInt64), math.MaxInt, int64(math.MinInt64), uint16(10), uint8(10))
	f.Add(int64(math.MinInt64), -5, int64(math.MaxInt64), uint16(300), uint8(3))
	f.Add(int64(153722867), 59, int64(math.MaxInt64), uint16(60), uint8(60))
	f.Fuzz(func(t *testing.T, n int64, k int, tns int64, secs uint16, parts uint8) {
		d := time.Duration(int(secs)%300+1) * time.Second
		p := d / time.Duration(int(parts)%60+1) // need not divide d here
		if p <= 0 {
			return
		}
		g := Grid{Segment: d, Part: p}
		at := time.Unix(0, tns)

		s, e := g.Start(n), g.End(n)
		if e.Before(s) {
			t.Fatalf("End(%d) %v before Start %v", n, e, s)
		}
		if n < math.MaxInt64 && g.Start(n+1).Before(s) {
			t.Fatalf("Start(%d) %v before Start(%d) %v", n+1, g.Start(n+1), n, s)
		}
		if s.Before(gridMin) || e.After(gridMax) {
			t.Fatalf("segment %d = [%v, %v) outside the exact range", n, s, e)
		}
		dn := d.Nanoseconds()
		if n <= math.MaxInt64/dn && n >= math.MinInt64/dn {
			if want := time.Unix(0, n*dn); !s.Equal(want) {
				t.Fatalf("Start(%d) = %v, want %v", n, s, want)
			}
			if got := g.Index(s); got != n {
				t.Fatalf("Index(Start(%d)) = %d", n, got)
			}
		}
		if i := g.Index(at); g.Start(i).After(at) || !(at.Before(g.End(i)) || g.End(i).Equal(gridMax)) {
			t.Fatalf("Index(%v) = %d, but segment %d is [%v, %v)", at, i, i, g.Start(i), g.End(i))
		}

		pe := g.PartEnd(n, k)
		if pe.Before(gridMin) || pe.After(gridMax) {
			t.Fatalf("PartEnd(%d, %d) = %v outside the exact range", n, k, pe)
		}
		if k >= 0 && pe.Before(s) {
			t.Fatalf("PartEnd(%d, %d) = %v before the segment's start %v", n, k, pe, s)
		}
		if k < math.MaxInt && g.PartEnd(n, k+1).Before(pe) {
			t.Fatalf("PartEnd(%d, %d) before PartEnd(%d, %d)", n, k+1, n, k)
		}
		pi := g.PartIndex(n, at)
		if at.Before(s) != (pi < 0) {
			t.Fatalf("PartIndex(%d, %v) = %d, but the segment starts at %v", n, at, pi, s)
		}
	})
}
