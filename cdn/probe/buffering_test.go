package probe

import (
	"strings"
	"testing"
	"time"
)

func TestClassifyBuffering(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	end := t0.Add(10 * time.Second)
	thr := time.Second
	progressive := Delivery{Requested: t0.Add(2 * time.Second), Start: t0, End: end, FirstByte: t0.Add(2*time.Second + 20*time.Millisecond),
		Delays: []time.Duration{10 * time.Millisecond, 30 * time.Millisecond}}
	atEnd := Delivery{Requested: t0.Add(time.Second), Start: t0, End: end, FirstByte: end.Add(5 * time.Millisecond),
		Delays: []time.Duration{9 * time.Second, 5 * time.Second, time.Millisecond}}
	// Bursty: the first bytes come at once, the events much later.
	delayed := Delivery{Requested: t0, Start: t0, End: end, FirstByte: t0.Add(10 * time.Millisecond),
		Delays: []time.Duration{3 * time.Second, 4 * time.Second, 2 * time.Second}}
	// Requested too close to the end to tell anything.
	tooLate := Delivery{Requested: end.Add(-time.Second), Start: t0, End: end, FirstByte: end}
	// Held before the segment started: the first byte counts from the start.
	held := Delivery{Requested: t0.Add(-3 * time.Second), Start: t0, End: end, FirstByte: t0.Add(5 * time.Millisecond)}

	for _, tc := range []struct {
		name          string
		ds            []Delivery
		live, buf     int
		buffers       bool
		explanationIn string
	}{
		{"progressive", []Delivery{progressive, progressive, held}, 3, 0, false, "arrived progressively"},
		{"at end", []Delivery{atEnd, atEnd, progressive}, 3, 2, true, "only near their end"},
		{"delayed", []Delivery{delayed, delayed}, 2, 2, true, "only near their end or late"},
		{"half", []Delivery{atEnd, progressive}, 2, 1, false, "1 of 2"},
		{"nothing live", []Delivery{tooLate}, 0, 0, false, "cannot tell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ClassifyBuffering(tc.ds, thr)
			if r.Live != tc.live || r.Buffered != tc.buf || r.Buffers != tc.buffers {
				t.Errorf("live %d buffered %d buffers %v; want %d %d %v", r.Live, r.Buffered, r.Buffers, tc.live, tc.buf, tc.buffers)
			}
			if !strings.Contains(r.Explanation, tc.explanationIn) {
				t.Errorf("explanation %q lacks %q", r.Explanation, tc.explanationIn)
			}
		})
	}
}
