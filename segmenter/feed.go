package segmenter

import (
	"cmp"
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

	pinned bool // guarded by hub.mu: registered with Hub.Ensure, never evicted or expired

	mu      sync.Mutex // guards the fields below
	entries map[string]json.RawMessage
	seq     uint64    // highest sequence folded into entries
	reach   time.Time // latest placement (stream time) of an update folded into entries
	bytes   int64     // the state's size: len(key)+len(value) summed over entries
	cur     *Log      // the open segment; nil before the first tick or after abort
	part    int       // cur's open part
	partEnd time.Time // the end of cur's open part (stream time)
	// active is the latest message timestamp (Update.Time, stream time) of
	// an update folded into entries: how long the feed is idle, for
	// eviction (see Config.FeedIdleEvict).
	active time.Time
	// emptySince is the local time since which entries is empty, zero
	// while it has keys: a feed empty for Config.emptyExpiry expires.
	emptySince time.Time
	// wrote is the stream time of the last frame written to cur, for the
	// keepalive rule: an update's placement, the end of a part that got a
	// keepalive, the segment's start for its snapshot. Frames this origin
	// alone writes (the snapshot of a mid-segment open or of a reload) do
	// not count, so that keepalives stay a function of the stream.
	wrote time.Time
	// wseq is the sequence of the last frame of the chain written (an
	// update or a snapshot): the next update frame's prev. Without
	// conflation it is seq.
	wseq uint64
	// Conflation (see conflate.go and the package documentation). every is
	// the feed's interval I, 0 when off; pending holds the latest update
	// per key of the bucket that ends at bucketEnd, the bucket holding
	// through, the latest stream time the feed advanced to.
	every     time.Duration
	pending   map[string]Update
	bucketEnd time.Time
	through   time.Time
	stage     *stage // the state a reload is rebuilding; nil outside one
	segs      map[int64]*Log
	hist      *history      // published lock-free to direct viewers (history.go)
	rotated   chan struct{} // closed and replaced whenever a segment opens
	aborted   bool
	gone      bool   // removed from the hub (evicted or expired); aborted too
	snapSeq   uint64 // sequence of the cached direct snapshot frame
	snapN     int64
	snap      []byte
}

// stage is the state a reload folds the replay into (see Hub.Reload),
// swapped in by Hub.Loaded. A stage from an older Reload is stale.
type stage struct {
	epoch   uint64
	entries map[string]json.RawMessage
	seq     uint64
	reach   time.Time
	bytes   int64
	active  time.Time
}

func newFeed(name string, h *Hub) *Feed {
	return &Feed{
		name:    name,
		hub:     h,
		entries: make(map[string]json.RawMessage),
		segs:    make(map[int64]*Log),
		hist:    newHistory(h.cfg.History),
		rotated: make(chan struct{}),
		every:   h.cfg.Conflate.For(name),
	}
}

// Name returns the feed's name.
func (f *Feed) Name() string { return f.name }

// Gone reports whether the hub removed the feed (evicted or expired): it
// serves nothing more, and a later update for its name makes a new Feed.
func (f *Feed) Gone() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gone
}

// Grid returns the feed's segment grid.
func (f *Feed) Grid() Grid { return f.hub.grid }

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// apply folds u into the state and appends its frame to the open segment,
// in the part of its timestamp (see placeLocked). Every applied update writes a
// frame, a delete of an absent key too, so that the prev chain is exact.
func (f *Feed) apply(u Update, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return errGone
	}
	if f.aborted {
		return ErrClosed
	}
	if u.Seq <= f.seq {
		return ErrDuplicate
	}
	old, exists := f.entries[u.Key]
	if len(u.Value) > 0 && !exists && len(f.entries) >= f.hub.cfg.MaxKeys {
		return ErrTooManyKeys
	}
	live := f.hub.live.Load()
	// A conflated update waits in its bucket and is encoded when the
	// bucket is flushed, if no later update of its key replaces it.
	pend := f.every > 0 && live && f.cur != nil
	var frame []byte
	var err error
	if pend {
		err = validUpdate(u)
	} else {
		frame, err = encodeUpdate(u, f.wseq)
	}
	if err != nil {
		return err
	}
	delta := sizeDelta(u, old, exists)
	if err := f.hub.reserve(f.name, &f.hub.bytes, f.bytes, delta); err != nil {
		return err
	}
	f.bytes += delta
	f.active = later(f.active, u.Time)
	var p time.Time
	if live && f.cur != nil {
		p = f.placeLocked(u.Time, now)
	} else if p = u.Time; p.After(now.Add(f.hub.cfg.PartLateness)) {
		p = now.Add(f.hub.cfg.PartLateness)
	}
	f.reach = later(f.reach, p)
	f.seq = u.Seq
	if len(u.Value) == 0 {
		delete(f.entries, u.Key)
	} else {
		f.entries[u.Key] = u.Value
	}
	f.noteEmptyLocked(now)
	switch {
	case !live:
		// Loading stored state: fold it, open segments once loaded.
	case f.cur == nil:
		// The feed's first segment opens now, its snapshot holding this update.
		f.openMidLocked(now.Add(-f.hub.cfg.PartLateness))
	case pend:
		f.pendLocked(u)
	default:
		f.cur.write(frame)
		f.wrote = later(f.wrote, p)
	}
	if pend {
		f.hist.note(u.Seq)
	} else {
		f.hist.push(u.Seq, frame)
		f.wseq = u.Seq
	}
	f.hub.stats.updates.Add(1)
	return nil
}

// pendLocked puts u into the conflation bucket open now, the one holding
// f.through, replacing a pending update of its key (counted).
func (f *Feed) pendLocked(u Update) {
	if f.pending == nil {
		f.pending = make(map[string]Update)
	}
	if len(f.pending) == 0 {
		f.bucketEnd = f.bucketEndOf(f.cur.N, f.through)
		if f.bucketEnd.Before(f.partEnd) {
			f.hub.kick() // Run flushes it at its end, before the part's
		}
	}
	if _, ok := f.pending[u.Key]; ok {
		f.hub.stats.conflated.Add(1)
	}
	f.pending[u.Key] = u
}

// bucketEndOf returns the end of the conflation bucket of segment n that
// holds t (clamped to the segment).
func (f *Feed) bucketEndOf(n int64, t time.Time) time.Time {
	start := f.hub.grid.Start(n)
	d := t.Sub(start)
	if d < 0 {
		d = 0
	}
	end := start.Add((d/f.every + 1) * f.every)
	if e := f.hub.grid.End(n); end.After(e) {
		end = e
	}
	return end
}

// flushLocked writes the pending updates of the bucket that ends at
// f.bucketEnd as update frames into the open part, in sequence order (the
// order every replica read them in), each frame's prev the frame before.
// The write counts as made at the bucket's end, for keepalives.
func (f *Feed) flushLocked() {
	if len(f.pending) == 0 {
		return
	}
	us := make([]Update, 0, len(f.pending))
	for _, u := range f.pending {
		us = append(us, u)
	}
	clear(f.pending)
	slices.SortFunc(us, func(a, b Update) int { return cmp.Compare(a.Seq, b.Seq) })
	frames := make([][]byte, 0, len(us))
	for _, u := range us {
		frame, err := encodeUpdate(u, f.wseq)
		if err != nil {
			continue // checked by apply: cannot happen
		}
		frames = append(frames, frame)
		f.hist.push(u.Seq, frame)
		f.wseq = u.Seq
	}
	f.cur.write(frames...)
	f.wrote = later(f.wrote, f.bucketEnd)
}

// dropPendingLocked forgets the pending updates (counted as conflated): a
// snapshot about to be written holds them.
func (f *Feed) dropPendingLocked() {
	f.hub.stats.conflated.Add(uint64(len(f.pending)))
	clear(f.pending)
}

// placeLocked returns the placement of an update stamped ts arriving at
// local time now, having closed every part it closes: first the parts whose
// lateness allowance ran out (end + L <= now), then the parts the update
// itself is past. The placement is ts clamped to [start of the open part,
// now + L]: an update stamped in an already closed part goes into the part
// open now, and one stamped further ahead than the allowance (a leader
// clock running ahead) cannot close parts or rotate segments early.
func (f *Feed) placeLocked(ts, now time.Time) time.Time {
	lat := f.hub.cfg.PartLateness
	f.advanceLocked(now.Add(-lat))
	p := ts
	if hi := now.Add(lat); p.After(hi) {
		p = hi
	}
	if lo := f.partEnd.Add(-f.hub.grid.Part); p.Before(lo) {
		p = lo
	}
	f.advanceLocked(p)
	return p
}

// advanceLocked closes, in order, every part of the open segment that ends
// at or before q (stream time): a keepalive ends a part when nothing was
// written for Keepalive, and the end of the last part rotates the segment.
func (f *Feed) advanceLocked(q time.Time) {
	g, ka := f.hub.grid, f.hub.cfg.Keepalive
	f.through = later(f.through, q)
	for f.cur != nil && !q.Before(f.partEnd) {
		l := f.cur
		if len(f.pending) > 0 && !f.partEnd.Before(f.bucketEnd) {
			// A bucket ending in (or with) this part is flushed into it;
			// the last part's end is the segment's, so nothing pending
			// crosses a segment boundary.
			f.flushLocked()
		}
		if f.part < l.parts-1 {
			if e := f.partEnd; !e.Before(f.wrote.Add(ka)) {
				l.endPart(keepaliveFrame)
				f.wrote = e
				f.hub.stats.keepalives.Add(1)
			} else {
				l.endPart()
			}
			f.part++
			f.partEnd = g.PartEnd(l.N, f.part)
			continue
		}
		// The last part ends with the segment; its "next" event is the
		// write that keeps viewers alive. Only an origin that stalled for a
		// whole segment skips segments.
		next := l.N + 1
		if !q.Before(g.End(next)) {
			next = g.Index(q)
		}
		l.close(encodeNext(f.hub.cfg.URLPrefix, f.name, next))
		f.hub.stats.rotated(l.Len())
		capHint := max(16<<10, l.Len()+l.Len()/4)
		if next == l.N+1 {
			f.openLocked(next, 0, 0, capHint)
		} else {
			f.openMidLocked(q)
		}
		f.dropExpiredLocked(q)
	}
	if f.cur != nil && len(f.pending) > 0 && !q.Before(f.bucketEnd) {
		f.flushLocked() // a bucket ending inside the open part
	}
}

// openMidLocked opens a segment in its middle (start-up, a feed's first
// message, an origin that stalled) at stream position max(q, reach), q being
// now − L: the latest point up to which every origin whose messages were on
// time has closed parts. Its open part is the part holding q, and its first
// complete part the one after (see Log.FirstPart). The keepalive clock is
// rebuilt from the stream: the last frame any origin wrote before is at the
// latest update placement (or the segment start), followed by the
// keepalives the rule wrote in the parts since.
//
// At exactly a segment's start with nothing folded stamped in it, every part
// before is closed everywhere and nothing of the segment was written
// anywhere: the segment opens as a rotation would open it, complete.
//
// A conflated feed's pending updates are dropped: the snapshot holds them.
// The last frame another origin wrote is then at the end of the bucket of
// the latest placement (its flush), and a log whose conflation buckets are
// longer than a part refuses every part up to the end of the bucket
// holding the opening position, as another origin may still write into
// that bucket's flush updates from before the opening.
func (f *Feed) openMidLocked(q time.Time) {
	g := f.hub.grid
	q = later(q, f.reach)
	f.through = later(f.through, q)
	n := g.Index(q)
	if q.Equal(g.Start(n)) && f.reach.Before(q) {
		f.openLocked(n, 0, 0, 16<<10)
		return
	}
	parts := f.hub.cfg.Parts()
	open := min(max(g.PartIndex(n, q), 0), parts-1)
	first := open + 1
	if f.every > g.Part {
		first = max(first, min(g.PartIndex(n, f.bucketEndOf(n, q)), parts))
	}
	f.openLocked(n, open, first, 16<<10)
	w := later(g.Start(n), f.reach)
	if f.every > 0 && !f.reach.Before(g.Start(n)) {
		w = f.bucketEndOf(n, f.reach)
	}
	for k := max(g.PartIndex(n, w), 0); k < open; k++ {
		if e := g.PartEnd(n, k); !e.Before(w.Add(f.hub.cfg.Keepalive)) {
			w = e
		}
	}
	f.wrote = w
}

// openLocked opens segment n with the current state in its snapshot (time:
// the segment's start), the parts before part open closed without bytes,
// first its first complete part (0 when opened by rotation).
func (f *Feed) openLocked(n int64, open, first int, capHint int) {
	g := f.hub.grid
	l := newLog(f.name, n, g, f.hub.cfg.Parts(), open, first, capHint)
	f.dropPendingLocked()
	l.write(f.hub.retryFrame, f.snapshotFrameLocked(n))
	f.wseq = f.seq
	f.cur = l
	f.part = open
	f.partEnd = g.PartEnd(n, open)
	f.wrote = l.Start
	f.segs[n] = l
	close(f.rotated)
	f.rotated = make(chan struct{})
}

// snapshotFrameLocked encodes the state as the snapshot event of segment n.
func (f *Feed) snapshotFrameLocked(n int64) []byte {
	keys := make([]string, 0, len(f.entries))
	for k := range f.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	data := snapshotData(make([]byte, 0, 256+len(keys)*64), f.name, n, f.seq, f.hub.grid.Start(n), keys, f.entries)
	return encodeSnapshot(data, f.seq)
}

// dropExpiredLocked forgets closed segments past retention (at rotations:
// a segment is readable for at least Retention after its end).
func (f *Feed) dropExpiredLocked(now time.Time) {
	for m, old := range f.segs {
		if old != f.cur && old.End.Add(f.hub.cfg.retention()).Before(now) {
			delete(f.segs, m)
		}
	}
}

// tick opens the feed's first segment and closes the parts whose lateness
// allowance ran out (writing keepalives, rotating, dropping segments past
// retention at each rotation). It returns when it next has something to
// do: when the open part's allowance runs out.
func (f *Feed) tick(now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted || !f.hub.live.Load() {
		return now.Add(time.Hour)
	}
	if f.cur == nil {
		f.openMidLocked(now.Add(-f.hub.cfg.PartLateness))
	}
	f.advanceLocked(now.Add(-f.hub.cfg.PartLateness))
	next := f.partEnd
	if len(f.pending) > 0 && f.bucketEnd.Before(next) {
		next = f.bucketEnd
	}
	return next.Add(f.hub.cfg.PartLateness)
}

// stageApply folds u into the state a reload is rebuilding (epoch names
// the Reload): the same rules as apply against that state, which starts
// empty at sequence 0, so restarted sequences are accepted. No frame is
// written: open segments keep serving the old state until Loaded.
func (f *Feed) stageApply(u Update, epoch uint64, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return errGone
	}
	if f.aborted {
		return ErrClosed
	}
	st := f.stage
	if st == nil || st.epoch != epoch {
		st = &stage{epoch: epoch, entries: make(map[string]json.RawMessage)}
		f.stage = st
	}
	if u.Seq <= st.seq {
		return ErrDuplicate
	}
	old, exists := st.entries[u.Key]
	if len(u.Value) > 0 && !exists && len(st.entries) >= f.hub.cfg.MaxKeys {
		return ErrTooManyKeys
	}
	if _, err := encodeUpdate(u, st.seq); err != nil {
		return err
	}
	delta := sizeDelta(u, old, exists)
	if err := f.hub.reserve(f.name, &f.hub.stageBytes, st.bytes, delta); err != nil {
		return err
	}
	st.bytes += delta
	st.active = later(st.active, u.Time)
	st.seq = u.Seq
	p := u.Time
	if hi := now.Add(f.hub.cfg.PartLateness); p.After(hi) {
		p = hi
	}
	st.reach = later(st.reach, p)
	if len(u.Value) == 0 {
		delete(st.entries, u.Key)
	} else {
		st.entries[u.Key] = u.Value
	}
	f.hub.stats.updates.Add(1)
	return nil
}

// loaded ends a replay of stored state.
//
// After a Reload (reload true, epoch naming it) the staged state replaces
// the live one (empty if the replay had nothing for this feed), the open
// segment gets a snapshot of it at once, with the new sequence as its id
// even when that is lower, and the history restarts: its frames may carry
// sequences of the old numbering.
//
// Either way, the replay folded only the last message per subject, so the
// history cannot resume a viewer from an id before it. Raising the floor
// sends such viewers a snapshot instead of a partial run. A feed without an
// open segment opens one now (mid-segment).
func (f *Feed) loaded(now time.Time, reload bool, epoch uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted {
		return
	}
	if reload {
		st := f.stage
		f.stage = nil
		if st == nil || st.epoch != epoch {
			st = &stage{entries: make(map[string]json.RawMessage)}
		}
		f.dropPendingLocked() // of the old state: the snapshot below replaces it
		f.entries, f.seq = st.entries, st.seq
		f.bytes, f.active = st.bytes, st.active
		f.noteEmptyLocked(now)
		f.reach = later(f.reach, st.reach)
		f.hist.reset(f.seq)
		f.snap = nil
		if f.cur != nil {
			f.advanceLocked(now.Add(-f.hub.cfg.PartLateness))
			f.cur.write(f.snapshotFrameLocked(f.cur.N))
		}
		f.wseq = f.seq
	}
	f.hist.raiseFloor(f.seq)
	if f.cur == nil {
		f.openMidLocked(now.Add(-f.hub.cfg.PartLateness))
	}
}

func (f *Feed) abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.abortLocked() {
		f.hub.stats.aborted.Add(1)
	}
}

// abortLocked ends the feed: its open segment is aborted, so that readers
// cut their responses short and no edge caches them, and every waiter
// wakes (WaitSegment returns ErrClosed, DirectSince reports closed). It
// reports whether an open segment was aborted.
func (f *Feed) abortLocked() bool {
	if f.aborted {
		return false
	}
	f.aborted = true
	aborted := f.cur != nil && f.cur.abort()
	close(f.rotated)
	f.hist.close()
	return aborted
}

// remove ends a feed the hub forgets (evicted or expired) the way Abort
// ends it, and drops its state and segments. It returns the bytes of its
// live state and of its staged state if it belongs to the reload in
// progress (reloading, epoch), for the hub's totals.
func (f *Feed) remove(reloading bool, epoch uint64) (live, staged int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = true
	f.abortLocked()
	live = f.bytes
	if st := f.stage; reloading && st != nil && st.epoch == epoch {
		staged = st.bytes
	}
	f.entries, f.bytes, f.stage = map[string]json.RawMessage{}, 0, nil
	clear(f.pending)
	f.segs = map[int64]*Log{}
	f.snap = nil
	return live, staged
}

// noteEmptyLocked records when entries became empty.
func (f *Feed) noteEmptyLocked(now time.Time) {
	switch {
	case len(f.entries) > 0:
		f.emptySince = time.Time{}
	case f.emptySince.IsZero():
		f.emptySince = now
	}
}

// sizeDelta is how much u changes a state's size (see Config.MaxFeedBytes),
// old being the key's value before it, if exists.
func sizeDelta(u Update, old json.RawMessage, exists bool) int64 {
	var d int64
	if len(u.Value) > 0 {
		d = int64(len(u.Key) + len(u.Value))
	}
	if exists {
		d -= int64(len(u.Key) + len(old))
	}
	return d
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
