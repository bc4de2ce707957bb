package segmenter

// history is a bounded ring of recent update frames for direct mode.
// It is guarded by the owning Feed's mutex.
type history struct {
	seqs   []uint64
	frames [][]byte
	head   int    // index of the oldest entry
	n      int    // number of entries
	floor  uint64 // highest sequence evicted; a reader below it cannot resume
}

func newHistory(size int) history {
	return history{seqs: make([]uint64, size), frames: make([][]byte, size)}
}

func (h *history) push(seq uint64, frame []byte) {
	size := len(h.seqs)
	if h.n == size {
		h.floor = h.seqs[h.head]
		h.seqs[h.head], h.frames[h.head] = seq, frame
		h.head = (h.head + 1) % size
		return
	}
	i := (h.head + h.n) % size
	h.seqs[i], h.frames[i] = seq, frame
	h.n++
}

// since appends to dst every frame with a sequence above after. ok is false
// when frames above after were already evicted.
func (h *history) since(after uint64, dst []byte) ([]byte, uint64, bool) {
	if after < h.floor {
		return dst, after, false
	}
	size := len(h.seqs)
	// Binary search for the first entry above after: sequences increase.
	lo, hi := 0, h.n
	for lo < hi {
		mid := (lo + hi) / 2
		if h.seqs[(h.head+mid)%size] <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	last := after
	for i := lo; i < h.n; i++ {
		j := (h.head + i) % size
		dst = append(dst, h.frames[j]...)
		last = h.seqs[j]
	}
	return dst, last, true
}
