package segmenter

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"marquee/sse"
)

// Hub holds every feed. It implements Sink for the feed consumer and hands
// out feeds and their segment logs to the HTTP layer.
type Hub struct {
	cfg        Config
	grid       Grid
	clock      Clock
	stats      stats
	log        *slog.Logger
	retryFrame []byte

	mu      sync.RWMutex // guards the fields below
	feeds   map[string]*Feed
	changed chan struct{}       // closed and replaced when a feed is added
	removed []func(name string) // OnRemove's functions, called by removeLocked

	// kicked wakes Run (buffered, one pending kick) when a conflation
	// bucket that ends before its part starts filling: its flush is due
	// before the part's end, when Run would wake next.
	kicked chan struct{}

	// phase orders Apply (read-locked) against Reload and Loaded
	// (write-locked): every Apply folds either into the live state or into
	// the staging state of one Reload, never into a stage being swapped.
	phase     sync.RWMutex
	reloading bool   // guarded by phase: Applies fold into staging state
	epoch     uint64 // guarded by phase: incremented by every Reload

	// bytes is the size of every feed's live state together, stageBytes
	// that of the staging states of the reload in progress (see
	// Config.MaxStateBytes); Loaded makes the one the other.
	bytes, stageBytes atomic.Int64

	closed atomic.Bool
	live   atomic.Bool   // segments open only once loaded; see Loaded
	loaded chan struct{} // closed by Loaded
}

var _ Sink = (*Hub)(nil)

// New returns a hub. It checks the structural rules of cfg (the operator
// ranges are Config.Validate's job, so tests may use short segments).
//
// A hub is born loading: it folds updates into state and history but opens
// no segment until Loaded is called, so the first segment of every feed
// starts with the complete stored state in its snapshot.
func New(cfg Config, clock Clock, log *slog.Logger) (*Hub, error) {
	if cfg.URLPrefix == "" {
		cfg.URLPrefix = "/v1/feeds"
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		cfg:        cfg,
		grid:       Grid{Segment: cfg.SegmentLength, Part: cfg.PartLength},
		clock:      clock,
		log:        log.With("component", "segmenter"),
		retryFrame: sse.AppendRetry(nil, int(cfg.Retry/time.Millisecond)),
		feeds:      make(map[string]*Feed),
		changed:    make(chan struct{}),
		kicked:     make(chan struct{}, 1),
		loaded:     make(chan struct{}),
	}
	return h, nil
}

// Loaded ends the loading phase (the feed source calls it once its replay
// of stored state is complete): every feed's current segment opens now,
// with the whole state in its snapshot. After a Reload it ends the reload
// instead: every feed's state becomes the one the replay rebuilt (empty for
// a feed the replay did not mention), every open segment gets a snapshot
// event of it at once (its id the new sequence, even if lower than before),
// the direct-mode history restarts at that sequence, and Stats.Reloads
// counts it. Idempotent: a Loaded with nothing to end does nothing.
func (h *Hub) Loaded() {
	h.phase.Lock()
	defer h.phase.Unlock()
	reload, first := h.reloading, !h.live.Load()
	if !reload && !first {
		return
	}
	h.reloading = false
	h.live.Store(true)
	now := h.now()
	fs, _ := h.all()
	for _, f := range fs {
		f.loaded(now, reload, h.epoch)
	}
	if reload {
		h.bytes.Store(h.stageBytes.Load())
		h.stageBytes.Store(0)
		h.stats.reloads.Add(1)
		h.log.Info("state reloaded", "feeds", len(fs))
	}
	if first {
		close(h.loaded)
	}
	h.mu.Lock()
	close(h.changed) // wake Run to recompute deadlines
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Reload tells the hub that the source is about to replay the whole stored
// state again (it resumed past discarded messages, or the stream was
// recreated and sequences restarted). Until the next Loaded, Apply folds
// into fresh staging state per feed (empty, sequence 0, so restarted
// sequences are accepted) and writes no frames, while open segments keep
// serving the old state, rotating and keeping alive. Calling Reload again
// before Loaded discards what the earlier one staged: the replay starts over.
func (h *Hub) Reload() {
	h.phase.Lock()
	defer h.phase.Unlock()
	h.reloading = true
	h.epoch++
	h.stageBytes.Store(0)
	h.log.Info("reloading state", "epoch", h.epoch)
}

// Live reports whether the hub is loaded and segments are open.
func (h *Hub) Live() bool { return h.live.Load() }

// LoadedC returns a channel that is closed once Loaded was called.
func (h *Hub) LoadedC() <-chan struct{} { return h.loaded }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	st := h.stats.snapshot()
	st.Loaded = h.live.Load()
	st.StateBytes = h.bytes.Load()
	return st
}

// Config returns the hub's configuration.
func (h *Hub) Config() Config { return h.cfg }

// Grid returns the segment grid.
func (h *Hub) Grid() Grid { return h.grid }

// Now returns the hub clock's time.
func (h *Hub) Now() time.Time { return h.clock.Now() }

// now is the clock's wall time without a monotonic reading: placements are
// compared with the grid and with each other on the wall clock only.
func (h *Hub) now() time.Time { return h.clock.Now().Round(0) }

// Apply folds u into the named feed, creating the feed on first use (not
// for a delete: ErrUnknownFeed), within the caps of Config: it returns
// ErrTooManyFeeds, ErrTooManyKeys or a *BytesError (ErrTooManyBytes) when
// one refuses u, after evicting idle feeds where that makes room (see
// Config.FeedIdleEvict).
func (h *Hub) Apply(feed string, u Update) error {
	if h.closed.Load() {
		return ErrClosed
	}
	h.phase.RLock()
	defer h.phase.RUnlock()
	now := h.now()
	roomMade := false
	for {
		f, ok := h.Feed(feed)
		var err error
		if ok {
			err = h.applyLocked(f, u, now)
		} else {
			err = h.create(feed, u, now)
		}
		var be *BytesError
		switch {
		case errors.Is(err, errGone):
			continue // evicted or expired meanwhile: look again
		case ok && !roomMade && errors.As(err, &be) && be.Var == varStateBytes:
			// All feeds together are full: idle ones may give their bytes up.
			roomMade = true
			if h.makeRoom(feed, u.Time, be.Would-be.Limit) {
				continue
			}
		}
		return err
	}
}

// applyLocked folds u into f's live state, or during a reload into its
// staging state. Called with phase held.
func (h *Hub) applyLocked(f *Feed, u Update, now time.Time) error {
	if h.reloading {
		return f.stageApply(u, h.epoch, now)
	}
	return f.apply(u, now)
}

// Ensure registers the named feed if it does not exist yet, so that it is
// listed and served before its first message, and pins it: it is never
// evicted or expired. It never opens a segment: Run (or Tick) does, once
// the hub is loaded.
func (h *Hub) Ensure(feed string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.feeds[feed]
	if !ok {
		if len(h.feeds) >= h.cfg.MaxFeeds {
			return ErrTooManyFeeds
		}
		f = newFeed(feed, h)
		h.feeds[feed] = f
		h.stats.feeds.Store(int64(len(h.feeds)))
		h.changedLocked()
		h.log.Info("feed created", "feed", feed)
	}
	f.pinned = true
	return nil
}

// OnRemove registers fn to be told the name of every feed the hub removes
// (evicted or expired; see the package documentation), so that what is kept
// per feed elsewhere (metric series) goes with it. fn runs synchronously
// while the hub holds its lock, after the feed is Gone and before a feed of
// the same name can exist again; so it must be quick and must not call the
// Hub (Feed.Gone is fine). Register before Run and before the first Apply.
func (h *Hub) OnRemove(fn func(name string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removed = append(h.removed, fn)
}

// Feed returns the named feed.
func (h *Hub) Feed(name string) (*Feed, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	f, ok := h.feeds[name]
	return f, ok
}

// Feeds returns the feed names, sorted.
func (h *Hub) Feeds() []string {
	h.mu.RLock()
	names := make([]string, 0, len(h.feeds))
	for n := range h.feeds {
		names = append(names, n)
	}
	h.mu.RUnlock()
	slices.Sort(names)
	return names
}

func (h *Hub) all() ([]*Feed, <-chan struct{}) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	fs := make([]*Feed, 0, len(h.feeds))
	for _, f := range h.feeds {
		fs = append(fs, f)
	}
	return fs, h.changed
}

// Tick brings every feed up to time now (part boundaries whose lateness
// allowance ran out, keepalives, rotation, retention) and returns the
// earliest time at which a feed has something to do next. When it runs
// does not change what the logs hold: Apply catches up the same way first.
func (h *Hub) Tick(now time.Time) time.Time {
	now = now.Round(0)
	fs, _ := h.all()
	next := now.Add(h.cfg.PartLength)
	for _, f := range fs {
		if t := f.tick(now); t.Before(next) {
			next = t
		}
	}
	h.expire(now)
	return next
}

// Run drives Tick with timers until ctx ends. It does not abort segments
// when it returns: the owner calls Abort once readers have been drained.
func (h *Hub) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		_, changed := h.all()
		next := h.Tick(h.clock.Now())
		d := next.Sub(h.clock.Now())
		if d < time.Millisecond {
			d = time.Millisecond
		}
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-changed:
		case <-h.kicked:
		case <-ctx.Done():
			return nil
		}
	}
}

// kick wakes Run to recompute its deadline.
func (h *Hub) kick() {
	select {
	case h.kicked <- struct{}{}:
	default:
	}
}

// Abort marks the hub closed and aborts every open segment, so readers end
// their responses without a clean end and no edge caches a truncated
// segment. Idempotent.
func (h *Hub) Abort() {
	if h.closed.Swap(true) {
		return
	}
	fs, _ := h.all()
	for _, f := range fs {
		f.abort()
	}
}
