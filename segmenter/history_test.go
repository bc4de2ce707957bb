package segmenter

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func histFrame(seq uint64) []byte { return fmt.Appendf(nil, "id: %d\ndata: x\n\n", seq) }

// wantFrames checks that data is exactly the frames from..to.
func wantFrames(t *testing.T, what string, data []byte, from, to uint64) {
	t.Helper()
	var want []byte
	for s := from; s <= to; s++ {
		want = append(want, histFrame(s)...)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("%s: %q, want frames %d..%d", what, data, from, to)
	}
}

// TestHistoryWindow: the history keeps the last size frames through many
// compactions; every view keeps answering what it answered when it was
// published (nothing it refers to changes), and resuming below the window
// or above the feed's sequence is refused.
func TestHistoryWindow(t *testing.T) {
	const size = 5
	h := newHistory(size)
	type kept struct {
		v    *DirectView
		data []byte
		seq  uint64
	}
	var views []kept
	for seq := uint64(1); seq <= 23; seq++ {
		h.push(seq, histFrame(seq))
		v := h.cur.Load()
		oldest := uint64(1)
		if seq > size {
			oldest = seq - size + 1
		}
		_, last, ok := v.Since(0)
		if seq > size {
			if ok {
				t.Fatalf("seq %d: resuming from 0 accepted with frames below %d evicted", seq, oldest)
			}
		} else if !ok || last != seq {
			t.Fatalf("seq %d: since 0: last %d ok %v", seq, last, ok)
		}
		data, last, ok := v.Since(oldest - 1)
		if !ok || last != seq {
			t.Fatalf("seq %d: since %d: last %d ok %v", seq, oldest-1, last, ok)
		}
		wantFrames(t, fmt.Sprint("seq ", seq), data, oldest, seq)
		if _, _, ok := v.Since(seq + 1); ok {
			t.Errorf("seq %d: resuming from the future accepted", seq)
		}
		if data, last, ok := v.Since(seq); !ok || len(data) != 0 || last != seq {
			t.Errorf("seq %d: since itself: %q %d %v", seq, data, last, ok)
		}
		views = append(views, kept{v, bytes.Clone(data), oldest - 1})
	}
	for i, k := range views {
		data, _, _ := k.v.Since(k.seq)
		if !bytes.Equal(data, k.data) {
			t.Errorf("view %d changed: %q, was %q", i, data, k.data)
		}
	}
	// Every position inside the window resumes exactly after it.
	v := h.cur.Load()
	for after := uint64(18); after <= 23; after++ {
		data, last, ok := v.Since(after)
		if !ok || last != 23 {
			t.Fatalf("since %d: last %d ok %v", after, last, ok)
		}
		wantFrames(t, fmt.Sprint("since ", after), data, after+1, 23)
	}
	if cap(h.seqs) > 2*size || len(h.buf) > 2*size*len(histFrame(23)) {
		t.Errorf("history holds %d entries (cap %d) and %d bytes for a window of %d", len(h.seqs), cap(h.seqs), len(h.buf), size)
	}
}

// TestHistoryResetFloorClose: a reload empties the history at the new
// sequence (lower ids resume with nothing, higher are refused), a raised
// floor refuses what is below it, and close wakes readers once for good.
func TestHistoryResetFloorClose(t *testing.T) {
	h := newHistory(4)
	for seq := uint64(1); seq <= 6; seq++ {
		h.push(seq, histFrame(seq))
	}
	before := h.cur.Load()
	h.reset(2)
	select {
	case <-before.Wake():
	default:
		t.Fatal("reset did not wake readers")
	}
	v := h.cur.Load()
	if _, _, ok := v.Since(5); ok {
		t.Error("after reset to 2: resuming from 5 accepted")
	}
	if data, last, ok := v.Since(2); !ok || len(data) != 0 || last != 2 {
		t.Errorf("after reset: since 2 = %q %d %v", data, last, ok)
	}
	h.push(3, histFrame(3))
	h.raiseFloor(3)
	v = h.cur.Load()
	if _, _, ok := v.Since(2); ok {
		t.Error("resuming below the raised floor accepted")
	}
	if data, _, ok := v.Since(3); !ok || len(data) != 0 {
		t.Errorf("since the floor: %q %v", data, ok)
	}
	h.close()
	select {
	case <-v.Wake():
	default:
		t.Fatal("close did not wake readers")
	}
	v = h.cur.Load()
	if !v.Closed() || v.Wake() != nil {
		t.Errorf("closed view: Closed %v, Wake %v", v.Closed(), v.Wake())
	}
	h.push(4, histFrame(4)) // ignored
	h.close()               // idempotent
	if got := h.cur.Load().Seq(); got != 3 {
		t.Errorf("seq after close = %d, want 3", got)
	}
}

// TestHistoryConcurrentReaders: readers follow the history through its
// view while a writer pushes (run with -race); each sees every frame once,
// in order, or is refused when it fell out of the window.
func TestHistoryConcurrentReaders(t *testing.T) {
	h := newHistory(64)
	const total = 5000
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Go(func() {
			var cursor uint64
			for {
				v := h.cur.Load()
				data, last, ok := v.Since(cursor)
				if !ok {
					// Fell out of the window (a stalled reader): resume
					// from the oldest frame kept, as a reconnect would.
					cursor = v.floor
					continue
				}
				if len(data) > 0 {
					wantFrames(t, fmt.Sprint("reader ", r), data, cursor+1, last)
					cursor = last
				}
				if cursor == total {
					return
				}
				if len(data) == 0 {
					<-v.Wake()
				}
			}
		})
	}
	for seq := uint64(1); seq <= total; seq++ {
		h.push(seq, histFrame(seq))
	}
	wg.Wait()
}

// TestDirectViewNoAllocs: a reader taking what is new allocates nothing.
func TestDirectViewNoAllocs(t *testing.T) {
	h := newHistory(128)
	for seq := uint64(1); seq <= 100; seq++ {
		h.push(seq, histFrame(seq))
	}
	f := &Feed{hist: h}
	allocs := testing.AllocsPerRun(1000, func() {
		v := f.Direct()
		if data, _, ok := v.Since(97); !ok || len(data) == 0 {
			t.Fatal("nothing")
		}
		_ = v.Wake()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read, want 0", allocs)
	}
}
