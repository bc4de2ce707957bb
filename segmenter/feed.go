package segmenter

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// Feed is one named feed: its state, its open and retained segment logs, and
// its direct-mode history.
type Feed struct {
	name string
	hub  *Hub

	mu       sync.Mutex // guards the fields below
	entries  map[string]json.RawMessage
	seq      uint64 // highest sequence folded into entries
	cur      *Log   // the open segment; nil before the first tick or after abort
	segs     map[int64]*Log
	hist     history
	histWake chan struct{} // closed and replaced on every update
	rotated  chan struct{} // closed and replaced whenever a segment opens
	aborted  bool
	snapSeq  uint64 // sequence of the cached direct snapshot frame
	snapN    int64
	snap     []byte
}

func newFeed(name string, h *Hub) *Feed {
	return &Feed{
		name:     name,
		hub:      h,
		entries:  make(map[string]json.RawMessage),
		segs:     make(map[int64]*Log),
		hist:     newHistory(h.cfg.History),
		histWake: make(chan struct{}),
		rotated:  make(chan struct{}),
	}
}

// Name returns the feed's name.
func (f *Feed) Name() string { return f.name }

// Grid returns the feed's segment grid.
func (f *Feed) Grid() Grid { return f.hub.grid }

// apply folds u into the state and appends its frame to the open segment.
func (f *Feed) apply(u Update, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted {
		return ErrClosed
	}
	if u.Seq <= f.seq {
		return ErrDuplicate
	}
	_, exists := f.entries[u.Key]
	if len(u.Value) > 0 && !exists && len(f.entries) >= f.hub.cfg.MaxKeys {
		return ErrTooManyKeys
	}
	frame, err := encodeUpdate(u)
	if err != nil {
		return err
	}
	live := f.hub.live.Load()
	if live && f.cur != nil {
		f.rotateLocked(now)
	}
	f.seq = u.Seq
	if len(u.Value) == 0 {
		if !exists {
			return nil // deleting an absent key changes nothing but the sequence
		}
		delete(f.entries, u.Key)
	} else {
		f.entries[u.Key] = u.Value
	}
	switch {
	case !live:
		// Loading stored state: fold it, open segments once loaded.
	case f.cur == nil:
		// The feed's first segment opens now, its snapshot holding this update.
		f.rotateLocked(now)
	default:
		f.cur.append(now, f.hub.grid, frame)
	}
	f.hist.push(u.Seq, frame)
	close(f.histWake)
	f.histWake = make(chan struct{})
	f.hub.stats.updates.Add(1)
	return nil
}

// tick rotates, writes keepalives, records part boundaries and drops expired
// segments. It returns when it next has something to do.
func (f *Feed) tick(now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted || !f.hub.live.Load() {
		return now.Add(time.Hour)
	}
	f.rotateLocked(now)
	g := f.hub.grid
	cur := f.cur
	cur.markParts(now, g)
	last := cur.lastWrite()
	if !now.Before(last.Add(f.hub.cfg.Keepalive)) {
		cur.append(now, g, keepaliveFrame)
		f.hub.stats.keepalives.Add(1)
		last = now
	}
	next := cur.End
	if ka := last.Add(f.hub.cfg.Keepalive); ka.Before(next) {
		next = ka
	}
	if k := g.PartIndex(cur.N, now); k >= 0 {
		if pe := g.PartEnd(cur.N, k); pe.Before(next) {
			next = pe
		}
	}
	return next
}

// rotateLocked opens the segment of now, closing the previous one with a
// "next" event, and forgets segments past retention.
func (f *Feed) rotateLocked(now time.Time) {
	g := f.hub.grid
	n := g.Index(now)
	if f.cur != nil && f.cur.N >= n {
		return
	}
	capHint := 16 << 10
	if prev := f.cur; prev != nil {
		prev.close(now, g, encodeNext(f.hub.cfg.URLPrefix, f.name, n))
		f.hub.stats.rotated(prev.Len())
		capHint = max(capHint, prev.Len()+prev.Len()/4)
	}
	l := newLog(f.name, n, g, f.hub.cfg.Parts(), capHint)
	keys := make([]string, 0, len(f.entries))
	for k := range f.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	data := snapshotData(make([]byte, 0, 256+len(keys)*64), f.name, n, f.seq, now, keys, f.entries)
	l.append(now, g, f.hub.retryFrame, encodeSnapshot(data, f.seq))
	f.cur = l
	f.segs[n] = l
	for m, old := range f.segs {
		if old.End.Add(f.hub.cfg.retention()).Before(now) {
			delete(f.segs, m)
		}
	}
	close(f.rotated)
	f.rotated = make(chan struct{})
}

// loaded ends a replay of stored state: the replay folded only the last
// message per subject (and wrote no frame for deletes of absent keys), so
// the history cannot resume a viewer from an id before it. Raising the
// floor sends such viewers a snapshot instead of a partial run.
func (f *Feed) loaded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hist.floor = max(f.hist.floor, f.seq)
}

func (f *Feed) abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted {
		return
	}
	f.aborted = true
	if f.cur != nil && f.cur.abort() {
		f.hub.stats.aborted.Add(1)
	}
	close(f.rotated)
	close(f.histWake)
}

// Segment returns the log of segment n if it is open or still retained.
func (f *Feed) Segment(n int64) (*Log, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.segs[n]
	return l, ok
}

// Current returns the open segment's log (nil before the first tick).
func (f *Feed) Current() *Log {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// WaitSegment waits until segment n is open (or retained) and returns it.
// It returns ErrClosed when the hub shuts down, ctx.Err() when ctx ends.
func (f *Feed) WaitSegment(ctx context.Context, n int64) (*Log, error) {
	for {
		f.mu.Lock()
		l, ok := f.segs[n]
		ch, aborted := f.rotated, f.aborted
		f.mu.Unlock()
		if ok {
			return l, nil
		}
		if aborted {
			return nil, ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Seq returns the highest sequence folded into the state.
func (f *Feed) Seq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// Keys returns the number of keys.
func (f *Feed) Keys() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

// Snapshot returns the current state as snapshot JSON (the same shape as the
// data of a snapshot event) and its sequence.
func (f *Feed) Snapshot(now time.Time) ([]byte, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshotLocked(now), f.seq
}

func (f *Feed) snapshotLocked(now time.Time) []byte {
	keys := make([]string, 0, len(f.entries))
	for k := range f.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return snapshotData(make([]byte, 0, 256+len(keys)*64), f.name, f.hub.grid.Index(now), f.seq, now, keys, f.entries)
}

// SnapshotFrame returns the current state as an encoded snapshot event (for
// direct mode), with its sequence. The frame is cached until the state or the
// segment changes.
func (f *Feed) SnapshotFrame(now time.Time) ([]byte, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.hub.grid.Index(now)
	if f.snap == nil || f.snapSeq != f.seq || f.snapN != n {
		f.snap = encodeSnapshot(f.snapshotLocked(now), f.seq)
		f.snapSeq, f.snapN = f.seq, n
	}
	return f.snap, f.seq
}

// DirectSince appends to dst the update frames with a sequence above after,
// for direct mode. ok is false when after cannot be resumed from (older than
// the history, or newer than anything this process applied): the caller
// then sends a snapshot. wake is closed at the next update (or shutdown,
// after which closed is true).
func (f *Feed) DirectSince(after uint64, dst []byte) (out []byte, last uint64, ok bool, wake <-chan struct{}, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if after > f.seq {
		return dst, after, false, f.histWake, f.aborted
	}
	out, last, ok = f.hist.since(after, dst)
	return out, last, ok, f.histWake, f.aborted
}
