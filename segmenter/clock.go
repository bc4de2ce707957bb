package segmenter

import "time"

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

// Grid maps wall-clock time to segment and part indexes.
type Grid struct {
	Segment time.Duration // D
	Part    time.Duration // P
}

// Index returns the segment index n = floor(t / D) (t in Unix time).
func (g Grid) Index(t time.Time) int64 {
	ns := t.UnixNano()
	d := g.Segment.Nanoseconds()
	n := ns / d
	if ns < 0 && ns%d != 0 {
		n--
	}
	return n
}

// Start returns the start of segment n.
func (g Grid) Start(n int64) time.Time { return time.Unix(0, n*g.Segment.Nanoseconds()) }

// End returns the end of segment n (the start of n+1).
func (g Grid) End(n int64) time.Time { return g.Start(n + 1) }

// PartIndex returns the part of segment n in progress at t: 0..Parts-1, or
// a negative number before the segment, Parts or more after it.
func (g Grid) PartIndex(n int64, t time.Time) int {
	dt := t.Sub(g.Start(n))
	if dt < 0 {
		return -1 - int((-dt-1)/g.Part)
	}
	return int(dt / g.Part)
}

// PartEnd returns the end of part k of segment n.
func (g Grid) PartEnd(n int64, k int) time.Time {
	return g.Start(n).Add(time.Duration(k+1) * g.Part)
}
