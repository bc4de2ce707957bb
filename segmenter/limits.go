package segmenter

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"
)

// The caps on the state: bytes per feed and in total, places for feeds,
// and how feeds give their place up (see the package documentation).

// reserve accounts for delta bytes more (or fewer) of one feed's state,
// whose size is feedBytes now, in total (the hub's live or staging total).
// A delta above zero that would take the feed above MaxFeedBytes, or the
// total above MaxStateBytes, is refused with a *BytesError and accounts
// nothing; shrinking is always accepted.
func (h *Hub) reserve(feed string, total *atomic.Int64, feedBytes, delta int64) error {
	if delta <= 0 {
		total.Add(delta)
		return nil
	}
	if feedBytes+delta > h.cfg.MaxFeedBytes {
		return &BytesError{Feed: feed, Var: varFeedBytes, Limit: h.cfg.MaxFeedBytes, Would: feedBytes + delta}
	}
	for {
		cur := total.Load()
		if cur+delta > h.cfg.MaxStateBytes {
			return &BytesError{Feed: feed, Var: varStateBytes, Limit: h.cfg.MaxStateBytes, Would: cur + delta}
		}
		if total.CompareAndSwap(cur, cur+delta) {
			return nil
		}
	}
}

// totalLocked is the byte total Apply accounts in now: the live state's,
// or during a reload the staging state's. Called with phase held.
func (h *Hub) totalLocked() *atomic.Int64 {
	if h.reloading {
		return &h.stageBytes
	}
	return &h.bytes
}

// standing is what the caps need to know of one feed, taken from the state
// Apply folds into now (the staging state during a reload).
type standing struct {
	f          *Feed
	pinned     bool
	empty      bool
	bytes      int64
	active     time.Time
	emptySince time.Time
}

// standingsLocked returns the standing of every feed but exclude. Called
// with phase held and hub.mu held for writing.
func (h *Hub) standingsLocked(exclude string) []standing {
	out := make([]standing, 0, len(h.feeds))
	for name, f := range h.feeds {
		if name == exclude {
			continue
		}
		s := f.standing(h.reloading, h.epoch)
		s.pinned = f.pinned
		out = append(out, s)
	}
	return out
}

func (f *Feed) standing(reloading bool, epoch uint64) standing {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := standing{f: f, empty: len(f.entries) == 0, bytes: f.bytes, active: f.active, emptySince: f.emptySince}
	if reloading {
		// What the replay rebuilt so far: a feed it has not mentioned
		// will be empty.
		s.empty, s.bytes, s.active = true, 0, time.Time{}
		if st := f.stage; st != nil && st.epoch == epoch {
			s.empty, s.bytes, s.active = len(st.entries) == 0, st.bytes, st.active
		}
	}
	return s
}

// idleVictims chooses the feeds to evict so that an update stamped ts fits:
// a place for a new feed (slot), and need bytes (none if need <= 0). Only
// feeds with keys, not pinned, whose last update is at least FeedIdleEvict
// before ts, qualify, the idlest first (ties by name), as few as suffice.
// It returns false, choosing none, when they do not suffice. Every input
// is a function of the stream, so replicas choose the same feeds.
func (h *Hub) idleVictims(all []standing, ts time.Time, slot bool, need int64) ([]standing, bool) {
	idle := h.cfg.FeedIdleEvict
	if idle <= 0 {
		return nil, false
	}
	var c []standing
	for _, s := range all {
		if !s.pinned && !s.empty && ts.Sub(s.active) >= idle {
			c = append(c, s)
		}
	}
	slices.SortFunc(c, func(a, b standing) int {
		return cmp.Or(a.active.Compare(b.active), cmp.Compare(a.f.name, b.f.name))
	})
	var freed int64
	n := 0
	for n < len(c) && (slot && n == 0 || freed < need) {
		freed += c[n].bytes
		n++
	}
	if slot && n == 0 || freed < need {
		return nil, false
	}
	return c[:n], true
}

// create makes feed name for its first update u and applies u, making room
// first if the caps are full: an empty feed gives its place up at once
// (its state is nothing a viewer would miss, and it would expire soon),
// otherwise idle feeds are evicted (see idleVictims). A delete creates no
// feed (ErrUnknownFeed), and no update that is then refused makes one, so
// refused messages cannot fill the feed cap. Called with phase held.
func (h *Hub) create(name string, u Update, now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f, ok := h.feeds[name]; ok { // made meanwhile
		return h.applyLocked(f, u, now)
	}
	if len(u.Value) == 0 {
		return ErrUnknownFeed
	}
	if _, err := encodeUpdate(u, 0); err != nil {
		return err
	}
	size := int64(len(u.Key) + len(u.Value))
	if size > h.cfg.MaxFeedBytes {
		return &BytesError{Feed: name, Var: varFeedBytes, Limit: h.cfg.MaxFeedBytes, Would: size}
	}
	all := h.standingsLocked(name)
	// Feeds with keys and pinned feeds hold their places; empty feeds
	// give theirs up, so that which empty feeds a replica still lists
	// (that depends on its clock, see expire) decides nothing here.
	taken := 0
	for _, s := range all {
		if s.pinned || !s.empty {
			taken++
		}
	}
	slot := taken >= h.cfg.MaxFeeds
	total := h.totalLocked().Load()
	need := total + size - h.cfg.MaxStateBytes
	if slot || need > 0 {
		victims, ok := h.idleVictims(all, u.Time, slot, need)
		if !ok {
			if slot {
				return ErrTooManyFeeds
			}
			return &BytesError{Feed: name, Var: varStateBytes, Limit: h.cfg.MaxStateBytes, Would: total + size}
		}
		for _, v := range victims {
			h.removeLocked(v.f, true, "reason", "idle", "idle", u.Time.Sub(v.active).Round(time.Second).String(), "bytes", v.bytes, "for", name)
		}
	}
	if len(h.feeds) >= h.cfg.MaxFeeds {
		var oldest *standing
		for i, s := range all {
			if !s.pinned && s.empty && h.feeds[s.f.name] == s.f &&
				(oldest == nil || s.emptySince.Before(oldest.emptySince)) {
				oldest = &all[i]
			}
		}
		if oldest == nil { // unreachable: taken < MaxFeeds <= len(feeds)
			return ErrTooManyFeeds
		}
		h.removeLocked(oldest.f, false, "reason", "replaced", "for", name)
	}
	f := newFeed(name, h)
	if err := h.applyLocked(f, u, now); err != nil {
		return err // not made
	}
	h.feeds[name] = f
	h.stats.feeds.Store(int64(len(h.feeds)))
	h.changedLocked()
	h.log.Info("feed created", "feed", name)
	return nil
}

// makeRoom evicts idle feeds other than feed (see idleVictims) so that an
// update stamped ts that needs need bytes more than MaxStateBytes leaves
// fits. It reports whether it evicted enough. Called with phase held.
func (h *Hub) makeRoom(feed string, ts time.Time, need int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	victims, ok := h.idleVictims(h.standingsLocked(feed), ts, false, need)
	for _, v := range victims {
		h.removeLocked(v.f, true, "reason", "idle", "idle", ts.Sub(v.active).Round(time.Second).String(), "bytes", v.bytes, "for", feed)
	}
	return ok
}

// removeLocked forgets feed f: its open segment is aborted and its URLs
// answer 404 from now on (see the package documentation). evicted says
// whether it had keys (Stats.FeedsEvicted) or none (Stats.FeedsExpired).
// The functions registered with OnRemove are told. Called with phase held
// and hub.mu held for writing.
func (h *Hub) removeLocked(f *Feed, evicted bool, attrs ...any) {
	delete(h.feeds, f.name)
	h.stats.feeds.Store(int64(len(h.feeds)))
	live, staged := f.remove(h.reloading, h.epoch)
	h.bytes.Add(-live)
	h.stageBytes.Add(-staged)
	if evicted {
		h.stats.evicted.Add(1)
	} else {
		h.stats.expired.Add(1)
	}
	for _, fn := range h.removed {
		fn(f.name)
	}
	h.changedLocked()
	h.log.Info("feed removed", append([]any{"feed", f.name}, attrs...)...)
}

// changedLocked wakes Run: the set of feeds changed. Called with hub.mu
// held for writing.
func (h *Hub) changedLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// expire removes the feeds, neither pinned nor reloading, that have had no
// keys for Config.emptyExpiry by the local time now: every segment they
// still retain began empty, so nobody loses state that a segment held. It
// uses the local clock, so replicas may list an empty feed for different
// times; nothing else depends on it (see create).
func (h *Hub) expire(now time.Time) {
	if !h.live.Load() || h.closed.Load() {
		return
	}
	h.phase.RLock()
	defer h.phase.RUnlock()
	if h.reloading {
		return
	}
	d := h.cfg.emptyExpiry()
	h.mu.RLock()
	var due []*Feed
	for _, f := range h.feeds {
		if !f.pinned {
			due = append(due, f)
		}
	}
	h.mu.RUnlock()
	due = slices.DeleteFunc(due, func(f *Feed) bool { return !f.expired(now, d) })
	if len(due) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range due {
		if h.feeds[f.name] == f && f.expired(now, d) {
			h.removeLocked(f, false, "reason", "expired", "empty_for", now.Sub(f.emptySinceTime()).Round(time.Second).String())
		}
	}
}

// expired reports whether the feed has had no keys for d by now.
func (f *Feed) expired(now time.Time, d time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.aborted && len(f.entries) == 0 && !f.emptySince.IsZero() && now.Sub(f.emptySince) >= d
}

func (f *Feed) emptySinceTime() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.emptySince
}

// StateBytes returns the size of the feed's state, in bytes: the sum over
// its keys of the key's length and its value's (see Config.MaxFeedBytes).
func (f *Feed) StateBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}
