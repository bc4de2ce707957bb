package segmenter

import "sync/atomic"

// DirectView is an immutable picture of a feed's direct-mode history: the
// recent update frames, concatenated, with their sequences, the feed's
// highest sequence, and a channel closed at the next change. Readers get
// one with Feed.Direct (an atomic load, no lock) and may keep it as long as
// they like: nothing it refers to is ever modified, so a direct viewer
// writes the bytes Since returns to its socket as they are, without a copy
// and without holding anything a writer needs.
type DirectView struct {
	buf    []byte   // the retained frames, concatenated (frame i ends at ends[i])
	seqs   []uint64 // seqs[i] is the sequence of frame i, increasing
	ends   []int
	first  int    // index of the oldest retained frame
	floor  uint64 // highest sequence evicted: a reader below it cannot resume
	seq    uint64 // the feed's highest sequence
	closed bool
	wake   chan struct{}
}

// Since returns the frames with a sequence above after, as one sub-slice
// of the shared buffer (do not modify it), and the sequence of the last
// of them (after when there are none). ok is false when after cannot be
// resumed from: frames above it were evicted, or it is above anything the
// feed applied (a reader from another numbering); the caller then sends a
// snapshot, or closes a live viewer as too slow.
func (v *DirectView) Since(after uint64) (data []byte, last uint64, ok bool) {
	if after > v.seq || after < v.floor {
		return nil, after, false
	}
	n := len(v.seqs)
	if n == v.first || v.seqs[n-1] <= after {
		return nil, after, true // the common case: nothing new
	}
	if n-2 < v.first || v.seqs[n-2] <= after {
		// A reader that has everything but the last frame.
		from := 0
		if n > 1 {
			from = v.ends[n-2]
		}
		return v.buf[from:v.ends[n-1]:v.ends[n-1]], v.seqs[n-1], true
	}
	// Binary search for the first frame above after: sequences increase.
	lo, hi := v.first, n-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if v.seqs[mid] <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	from := 0
	if lo > 0 {
		from = v.ends[lo-1]
	}
	to := v.ends[n-1]
	return v.buf[from:to:to], v.seqs[n-1], true
}

// Seq returns the feed's highest sequence as of this view.
func (v *DirectView) Seq() uint64 { return v.seq }

// Closed reports whether the feed was shut down (Hub.Abort): the view will
// never change again.
func (v *DirectView) Closed() bool { return v.closed }

// Wake returns a channel closed at the next change of the history (an
// update, a reload, shutdown). Nil when the view is closed.
func (v *DirectView) Wake() <-chan struct{} {
	if v.closed {
		return nil
	}
	return v.wake
}

// history is a feed's bounded direct-mode history. Writers (the owning
// Feed, with its mutex held) append; readers only ever see the immutable
// DirectView in cur.
//
// The frames are kept in append-only arrays: a push appends beyond the
// length any published view covers (readers never look there), and
// evicting only moves the start of the retained window. Once the evicted
// prefix is as long as the window, the window is copied into fresh arrays
// (so a push costs O(1) amortised and the memory is at most twice the
// window); views published before keep the old arrays.
type history struct {
	size   int
	buf    []byte
	seqs   []uint64
	ends   []int
	first  int
	floor  uint64
	seq    uint64
	closed bool
	wake   chan struct{}

	cur atomic.Pointer[DirectView]
}

func newHistory(size int) *history {
	h := &history{size: size, wake: make(chan struct{})}
	h.publish()
	return h
}

// publish makes the current state visible to readers without waking them.
func (h *history) publish() {
	h.cur.Store(&DirectView{
		buf: h.buf, seqs: h.seqs, ends: h.ends, first: h.first,
		floor: h.floor, seq: h.seq, closed: h.closed, wake: h.wake,
	})
}

// notify publishes the current state and wakes the readers of the last view.
func (h *history) notify() {
	old := h.wake
	if !h.closed {
		h.wake = make(chan struct{})
	}
	h.publish()
	close(old)
}

// push appends the frame of update seq (the feed's new highest sequence),
// evicting the oldest frame when the history is full, and wakes readers.
func (h *history) push(seq uint64, frame []byte) {
	if h.closed {
		return
	}
	if len(h.seqs)-h.first == h.size {
		h.floor = h.seqs[h.first]
		h.first++
		if h.first >= h.size {
			h.compact()
		}
	}
	h.buf = append(h.buf, frame...)
	h.seqs = append(h.seqs, seq)
	h.ends = append(h.ends, len(h.buf))
	h.seq = max(h.seq, seq) // a conflated frame may come after its seq was noted
	h.notify()
}

// note records seq as the feed's new highest sequence without a frame (a
// conflated update, whose frame, if any, is pushed when its bucket ends),
// so that a viewer holding seq (the direct snapshot's) resumes. It wakes
// no reader: there is nothing to send, and direct viewers of a conflated
// feed wake once per bucket, not once per message (a reconnect waiting
// for its Last-Event-ID to be applied wakes at the next frame).
func (h *history) note(seq uint64) {
	if h.closed || seq <= h.seq {
		return
	}
	h.seq = seq
	h.publish()
}

// compact copies the retained window into fresh arrays (room for the
// window twice over), leaving the old ones to the views that hold them.
func (h *history) compact() {
	n := len(h.seqs) - h.first
	from := h.ends[h.first-1]
	buf := make([]byte, len(h.buf)-from, 2*(len(h.buf)-from)+64)
	copy(buf, h.buf[from:])
	seqs := make([]uint64, n, 2*h.size)
	copy(seqs, h.seqs[h.first:])
	ends := make([]int, n, 2*h.size)
	for i, e := range h.ends[h.first:] {
		ends[i] = e - from
	}
	h.buf, h.seqs, h.ends, h.first = buf, seqs, ends, 0
}

// reset empties the history (a reload: the frames held may carry another
// numbering) at the feed's new sequence seq, and wakes readers.
func (h *history) reset(seq uint64) {
	if h.closed {
		return
	}
	h.buf, h.seqs, h.ends, h.first = nil, nil, nil, 0
	h.floor, h.seq = 0, seq
	h.notify()
}

// raiseFloor makes sequences below seq unresumable (a replay folded only
// the last message per subject, so the history has holes below it).
func (h *history) raiseFloor(seq uint64) {
	if h.closed || seq <= h.floor {
		return
	}
	h.floor = seq
	h.publish()
}

// close marks the history shut down and wakes readers for the last time.
func (h *history) close() {
	if h.closed {
		return
	}
	h.closed = true
	h.notify()
}

// Direct returns the feed's direct-mode history as it is now: one atomic
// load, no lock.
func (f *Feed) Direct() *DirectView { return f.hist.cur.Load() }

// DirectSince appends to dst the update frames with a sequence above after,
// for direct mode. ok is false when after cannot be resumed from (older than
// the history, or newer than anything this process applied): the caller
// then sends a snapshot. wake is closed at the next update (or shutdown,
// after which closed is true). It takes no lock (see Direct).
func (f *Feed) DirectSince(after uint64, dst []byte) (out []byte, last uint64, ok bool, wake <-chan struct{}, closed bool) {
	v := f.Direct()
	data, last, ok := v.Since(after)
	return append(dst, data...), last, ok, v.wake, v.closed
}
