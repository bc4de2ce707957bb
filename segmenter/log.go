package segmenter

import (
	"sync"
	"sync/atomic"
	"time"
)

// LogState is the life-cycle state of a segment log.
type LogState int

const (
	// Open: the segment is live and may grow.
	Open LogState = iota
	// Closed: the segment ended cleanly with its "next" event; it never changes again.
	Closed
	// Aborted: the segment could not be finished (shutdown). Readers must
	// abort their responses so that no edge caches a truncated copy.
	Aborted
)

func (s LogState) String() string {
	switch s {
	case Open:
		return "open"
	case Closed:
		return "closed"
	case Aborted:
		return "aborted"
	}
	return "unknown"
}

// view is an immutable picture of a log for readers.
type view struct {
	buf   []byte
	ends  []int // the part boundaries recorded so far (see Log.ends)
	state LogState
	wake  chan struct{}
}

// Log is the append-only log of one segment of one feed: encoded SSE frames,
// the offsets of its part boundaries, and a close-and-replace wake channel.
//
// Bytes below a length that a reader has seen never change, so Since hands
// out sub-slices of the buffer without copying. Parts are consecutive byte
// ranges: the owning Feed decides which part a frame goes into (by its
// timestamp) and when a part closes (see the package documentation); the
// log only appends to the open part and records boundaries.
type Log struct {
	Feed  string
	N     int64
	Start time.Time
	End   time.Time
	parts int // number of parts in the segment
	first int // the first complete part (FirstPart)

	// cur is what readers see: replaced (never modified) by every change,
	// so Since is one atomic load with no lock shared among readers.
	cur atomic.Pointer[view]

	mu    sync.RWMutex // guards the fields below
	buf   []byte
	ends  []int // ends[k] is the offset at which part k ended; len(ends) = closed parts
	state LogState
	wake  chan struct{}
}

// newLog returns the log of segment n whose open part is part open: the
// parts before it are closed without bytes. first is its first complete
// part (0, or open+1 for a log opened mid-segment).
func newLog(feed string, n int64, g Grid, parts, open, first, capHint int) *Log {
	l := &Log{
		Feed:  feed,
		N:     n,
		Start: g.Start(n),
		End:   g.End(n),
		parts: parts,
		first: first,
		buf:   make([]byte, 0, capHint),
		ends:  make([]int, open, parts),
		wake:  make(chan struct{}),
	}
	l.publishLocked()
	return l
}

// publishLocked makes the current buffer, state and wake channel visible to
// readers. Called with mu held for writing.
func (l *Log) publishLocked() {
	l.cur.Store(&view{buf: l.buf, ends: l.ends, state: l.state, wake: l.wake})
}

// Since returns the bytes from off to the current end, the log's state, and a
// channel that is closed at the next change. When state is not Open the log
// will never change again and wake is nil.
func (l *Log) Since(off int) (data []byte, state LogState, wake <-chan struct{}) {
	v := l.cur.Load()
	n := len(v.buf)
	if off > n {
		off = n
	}
	data = v.buf[off:n:n]
	if v.state != Open {
		return data, v.state, nil
	}
	return data, v.state, v.wake
}

// Len returns the current length in bytes.
func (l *Log) Len() int { return len(l.cur.Load().buf) }

// State returns the log's life-cycle state.
func (l *Log) State() LogState { return l.cur.Load().state }

// Bytes returns the whole log as it is now (not a copy: do not modify).
func (l *Log) Bytes() []byte {
	d, _, _ := l.Since(0)
	return d
}

// Parts returns the number of parts of the segment.
func (l *Log) Parts() int { return l.parts }

// Part returns the bytes written during part k once part k is finished
// (ready=true). Otherwise it returns ready=false and a channel closed at the
// next change of the log (nil when the log was aborted: the part will never
// finish). k must be in [0, Parts()).
func (l *Log) Part(k int) (data []byte, ready bool, state LogState, wake <-chan struct{}) {
	return l.rangeOf(k, false)
}

// UpTo returns the bytes from the start of the segment to the end of part k
// (snapshot plus every update so far), with the same readiness rules as Part.
func (l *Log) UpTo(k int) (data []byte, ready bool, state LogState, wake <-chan struct{}) {
	return l.rangeOf(k, true)
}

// FirstPart returns the first part of this log that is complete on this
// origin: 0 for a segment opened at its start (by rotation), otherwise the
// part after the one in which it was opened. A log opens mid-segment when
// the origin starts (or a feed appears) in the middle of the segment: its
// snapshot then holds the updates that other origins have as update frames
// in the parts up to and including the part open at that moment, so those
// parts differ from theirs. The part open at opening is the one holding
// max(now − PartLateness, the latest update timestamp folded so far): the
// parts before it are closed on every origin whose messages were on time,
// and it may still be receiving updates there, so it is not complete here
// either. Part and UpTo report parts before FirstPart as never ready and the
// HTTP layer refuses them, because serving them as immutable responses would
// let an edge cache bytes that another origin has different. (UpTo of a
// later part is served: it starts with this origin's snapshot, a different
// byte string from another origin's but the same state.) In a feed
// conflated with buckets longer than a part, FirstPart is the part that
// starts where the bucket holding that position ends, as the frames other
// origins write at that bucket's end may be updates this snapshot holds.
func (l *Log) FirstPart() int {
	return l.first
}

// rangeOf reads the published view only (one atomic load, no lock): ends
// is appended within the capacity it was made with (one slot per part), so
// a view's ends never changes below its length.
func (l *Log) rangeOf(k int, fromStart bool) ([]byte, bool, LogState, <-chan struct{}) {
	v := l.cur.Load()
	if k < l.first || k >= l.parts {
		return nil, false, v.state, nil
	}
	if k >= len(v.ends) {
		if v.state == Open {
			return nil, false, v.state, v.wake
		}
		return nil, false, v.state, nil
	}
	from := 0
	if !fromStart && k > 0 {
		from = v.ends[k-1]
	}
	to := v.ends[k]
	return v.buf[from:to:to], true, v.state, nil
}

// FinishedParts returns how many parts are closed, counting those before
// FirstPart (closed without bytes).
func (l *Log) FinishedParts() int { return len(l.cur.Load().ends) }

// The methods below are called by the owning Feed with its mutex held; they
// take the log's write lock themselves.

// write appends frames to the open part and wakes readers.
func (l *Log) write(frames ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != Open {
		return
	}
	for _, f := range frames {
		l.buf = append(l.buf, f...)
	}
	l.notifyLocked()
}

// endPart appends frames (a keepalive, or none) to the open part, records
// its boundary and wakes readers. The Feed never ends the last part this
// way: close does.
func (l *Log) endPart(frames ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != Open || len(l.ends) >= l.parts-1 {
		return
	}
	for _, f := range frames {
		l.buf = append(l.buf, f...)
	}
	l.ends = append(l.ends, len(l.buf))
	l.notifyLocked()
}

// close appends the final frame (the "next" event), finishes every part and
// marks the log Closed.
func (l *Log) close(final []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != Open {
		return
	}
	l.buf = append(l.buf, final...)
	for len(l.ends) < l.parts {
		l.ends = append(l.ends, len(l.buf))
	}
	l.state = Closed
	old := l.wake
	l.wake = nil
	l.publishLocked()
	close(old)
}

// abort marks an open log Aborted and wakes its readers.
func (l *Log) abort() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != Open {
		return false
	}
	l.state = Aborted
	old := l.wake
	l.wake = nil
	l.publishLocked()
	close(old)
	return true
}

func (l *Log) notifyLocked() {
	old := l.wake
	l.wake = make(chan struct{})
	l.publishLocked()
	close(old)
}
