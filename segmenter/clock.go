package segmenter

import (
	"math"
	"time"
)

// Clock tells the time. Hub.Run uses real timers for waiting; with a fake
// Clock, drive the hub with Hub.Tick instead (or use testing/synctest, in
// which the system clock is already fake).
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

var _ Clock = SystemClock{}

// The instants a count of nanoseconds since the Unix epoch can express
// (years 1677 to 2262): the range in which Grid is exact.
var (
	gridMin = time.Unix(0, math.MinInt64)
	gridMax = time.Unix(0, math.MaxInt64)
)

// Grid maps wall-clock time to segment and part indexes. Segment and Part
// must be positive.
//
// Grid is exact for every segment that starts within the range of
// time.Time.UnixNano (years 1677 to 2262) and saturates outside it: the
// start of a segment further out is the last (first) instant of that
// range, and so are its end and the ends of its parts. No method overflows
// or panics for any n or k, but a saturated answer is no real time: code
// that takes a segment or part number from outside (a request) checks it
// against the window it can serve, by integer comparison with Index(now),
// before it asks Grid for any time of it.
type Grid struct {
	Segment time.Duration // D
	Part    time.Duration // P
}

// Index returns the segment index n = floor(t / D) (t in Unix time). For
// t outside the exact range it returns the index of the range's first or
// last instant.
func (g Grid) Index(t time.Time) int64 {
	switch {
	case t.Before(gridMin):
		t = gridMin
	case t.After(gridMax):
		t = gridMax
	}
	ns := t.UnixNano()
	d := g.Segment.Nanoseconds()
	n := ns / d
	if ns < 0 && ns%d != 0 {
		n--
	}
	return n
}

// Start returns the start of segment n, saturated at the ends of the exact
// range.
func (g Grid) Start(n int64) time.Time {
	d := g.Segment.Nanoseconds()
	switch {
	case n > math.MaxInt64/d:
		return gridMax
	case n < math.MinInt64/d:
		return gridMin
	}
	return time.Unix(0, n*d)
}

// End returns the end of segment n (the start of n+1), saturated like Start.
func (g Grid) End(n int64) time.Time {
	if n == math.MaxInt64 {
		return gridMax
	}
	return g.Start(n + 1)
}

// PartIndex returns the part of segment n in progress at t: 0..Parts-1, or
// a negative number before the segment, Parts or more after it. Far from
// the segment the answer saturates (at the int range of the platform).
func (g Grid) PartIndex(n int64, t time.Time) int {
	dt := t.Sub(g.Start(n)) // saturates at the time.Duration range
	if dt < 0 {
		// -(dt+1) cannot overflow: dt+1 > math.MinInt64.
		return -1 - clampInt((-(dt + 1))/g.Part)
	}
	return clampInt(dt / g.Part)
}

// PartEnd returns the end of part k of segment n. A negative k counts back
// from the segment's start (k = -1 ends where the segment starts). The
// result saturates like Start: it never lies beyond the exact range, and
// it is never earlier than Start(n) for k >= 0.
func (g Grid) PartEnd(n int64, k int) time.Time {
	start := g.Start(n)
	p := g.Part.Nanoseconds()
	parts := int64(k) + 1
	if k == math.MaxInt || parts > math.MaxInt64/p {
		return gridMax
	}
	if parts < math.MinInt64/p {
		return gridMin
	}
	end := start.Add(time.Duration(parts * p))
	switch {
	case end.After(gridMax):
		return gridMax
	case end.Before(gridMin):
		return gridMin
	}
	return end
}

// clampInt converts a count of parts to int, saturating where int is
// narrower than int64.
func clampInt(d time.Duration) int {
	switch {
	case int64(d) > math.MaxInt:
		return math.MaxInt
	case int64(d) < math.MinInt:
		return math.MinInt
	}
	return int(d)
}
