// Package segmenter owns the state of every feed and turns it into segment
// logs: for each feed, the latest JSON value per key, a wall-clock segment
// grid of length D (segment n covers [n·D, (n+1)·D), in parts of length P),
// and for each open or recently closed segment an append-only log of
// already-encoded SSE frames.
//
// A segment log starts with a retry field and a snapshot event, then holds an
// update event per applied message, keepalive comments, and at its end a
// "next" event naming the next segment's URL. Every viewer of a segment reads
// the same bytes. The log also records the byte offset of each part boundary
// (parts mode), and the feed keeps a bounded history of update frames
// (direct mode).
//
// # Segments and parts are a function of the stream
//
// Several origin replicas serve one CDN, and an edge may take part k from one
// and part k+1 from another, so what a replica writes depends on the
// messages it read, never on when they arrived or on its clock. L is the
// lateness allowance (Config.PartLateness), H the keepalive interval.
//
// Placement. An update goes into the part that contains its timestamp
// (Update.Time: the JetStream timestamp set by the stream leader), clamped:
// its placement is clamp(ts, start of the part open now, local now + L). A
// timestamp in a part that already closed places it in the part open now; a
// timestamp further ahead than the allowance (a leader clock running ahead)
// is placed at now + L, so it cannot close parts or rotate segments into the
// future. The frame keeps the message's own timestamp in its "time" field.
//
// Closing. Parts are append-only byte ranges. Part k closes (its boundary is
// recorded, Part and UpTo report it ready) at local time PartEnd(k) + L, or
// as soon as an update placed at or after PartEnd(k) is appended, whichever
// comes first. Apply first closes what the allowance closes by now, so when
// Hub.Tick runs changes when a part becomes ready, never what it holds.
//
// Rotation is the same rule for the last part: segment n+1 opens at local
// time Start(n+1) + L, or when an update placed at or after Start(n+1)
// arrives. Until then, updates stamped before Start(n+1) go into segment
// n's last part and so into n+1's snapshot. The snapshot holds exactly the
// updates placed in earlier segments, its "time" is the segment's start, and
// n's "next" event names n+1 (a replica that stalled for a whole segment
// skips to the current one and names it instead).
//
// Keepalives. When part k closes (but the last, which ends with "next"), a
// keepalive comment ends it if no frame was written in the last H of stream
// time: if PartEnd(k) − w ≥ H, w being the placement of the last update, the
// end of the last part a keepalive ended, or the segment's start (its
// snapshot). So frames are never more than H + P apart in stream time, and a
// stream viewer receives something at least every H + P + L by the replica's
// clock (plus, when message timestamps run ahead of that clock, by how much,
// at most L).
//
// The bound. Replicas that read the same messages in the same order, with
// the same configuration, each message reaching each of them less than L
// after its timestamp (and not more than L before it, by their clocks),
// write byte-identical logs for every segment they opened by rotation, and
// byte-identical parts from each log's FirstPart on. A message that arrives
// at local time a after its part closed (a ≥ PartEnd + L) is not lost: it
// goes into the part open at a, the one holding max(a − L, r), r being the
// latest placement before it, where a replica that had it on time holds it
// in its own part. A viewer mixing the two copies may see it twice (it drops
// the duplicate by seq) or miss it: the next update's prev, which is the late
// update's seq, shows the gap at once, and the client re-joins. The
// replicas' bytes differ in those parts (and in the next segment's snapshot
// when the two parts lie in different segments), and agree again from the
// segment after.
//
// A log opened mid-segment (the origin started, a feed appeared, or a
// replica stalled) holds a snapshot of the state at opening instead of the
// frames before it, in the part holding max(now − L, the latest placement
// folded): parts up to that one are refused (Log.FirstPart), the later ones
// are byte-identical to other replicas' (its keepalive clock is rebuilt from
// that latest placement and the grid), and its stream body and upto
// responses hold the same state in different bytes. A log opened exactly at
// its segment's start plus L, with no update stamped in the segment yet, is
// the one rotation opens.
//
// # Conflation
//
// A feed may be conflated with an interval I (Config.Conflate,
// MARQUEE_CONFLATE): each segment is cut into buckets [Start(n) + b·I,
// Start(n) + (b+1)·I), and of the updates of one key in one bucket only the
// latest is written. I divides P or is a multiple of P dividing D, so a
// bucket lies in one part or is a run of whole parts, and none crosses a
// segment boundary.
//
// An update's bucket is the one holding the stream time the feed reached
// when it was placed: the latest placement or now − L so far, its own
// placement included (the open part is chosen the same way). It is folded
// into the state at once (Keys, Seq, /snapshot, the direct snapshot and
// every later segment snapshot see it), and waits in the bucket, replacing
// a pending update of its key (Stats.Conflated counts the replaced ones).
// When the feed's stream time reaches the bucket's end (a placement or
// now − L at or past it, so at the latest at local time end + L, when
// Hub.Run wakes), the pending updates are written into the open part in
// sequence order, before that part closes; a bucket ending with a part is
// written into that part. So the last part's bucket is written before the
// "next" event, and a segment's snapshot equals the state its frames built.
// For keepalives the write counts as made at the bucket's end.
//
// The same bound holds: a message on time (within L of its timestamp) never
// reaches a replica after stream time passed its bucket there, except by
// the placements of earlier messages, which every replica shares. So the
// bucket of every update, the set written at each bucket end and their
// order are a function of the stream, and so are the bytes. A log opened
// mid-segment drops the pending updates (its snapshot holds them, they are
// counted) and rebuilds its keepalive clock from the end of the latest
// placement's bucket; when I > P it also refuses the parts up to the end of
// the bucket holding its opening position, whose flush on other origins
// may hold updates from before it opened (FirstPart). A reload's snapshot
// drops the pending updates of the old state the same way.
//
// # Sequences
//
// Every applied message writes an update frame (a delete of an absent key
// too), whose "prev" is the feed's highest sequence before it, so the chain
// snapshot → updates is exact: a client holding seq s has missed something
// exactly when an update's prev > s. Duplicates (seq not above the highest)
// and refused messages write nothing. In a conflated feed, a written frame's
// prev is the sequence of the frame written before it, or of the snapshot
// (the seq of the last message placed before its bucket, for the first
// frame of a bucket, on every replica), and frames are written in sequence
// order: a client holding s still has missed a written frame exactly when
// prev > s, and a conflated-away update is not a gap. A viewer holding the
// direct snapshot, taken while updates are pending, skips their frames
// (seq not above its own). Hub.Reload rebuilds the state from a
// replay (restarted sequences accepted); the following Loaded writes a
// snapshot of it into every open segment at once, its id the new sequence
// (even if lower), and the direct-mode history restarts there.
//
// # Caps, and feeds that go away
//
// A feed's state is capped in keys (Config.MaxKeys) and in bytes, the sum
// over its keys of the key's length and its value's (MaxFeedBytes), and
// all feeds' states together in bytes (MaxStateBytes), during a reload the
// staging state the same way. An update that would grow a state past a cap
// is refused (ErrTooManyKeys, a *BytesError wrapping ErrTooManyBytes) and
// writes nothing; one that shrinks or deletes is always applied. The state
// is the largest thing the hub holds several copies of (one per retained
// segment's snapshot, see MaxStateBytes), so the byte caps bound memory.
//
// Feeds are capped in number (MaxFeeds). A delete creates no feed
// (ErrUnknownFeed), nor does a first update that is refused, so refused
// messages cannot take places. Places are held by the feeds with keys and
// by the pinned ones (Hub.Ensure: MARQUEE_FEEDS); an empty feed gives its
// place to a new feed at once. When the places or MaxStateBytes are full,
// an update that needs room evicts the feeds with keys, not pinned, that
// are idle: whose latest update's timestamp is at least FeedIdleEvict
// before its own, the idlest first, as few as make it fit, and none if
// they would not. Otherwise it is refused (ErrTooManyFeeds, or
// ErrTooManyBytes).
//
// An empty feed, not pinned, expires when it has been empty for the
// retention plus one segment by the local clock: every segment it retains
// then began empty. No expiry runs during a reload.
//
// A removed feed (evicted or expired, counted in Stats.FeedsEvicted and
// Stats.FeedsExpired, logged) ends like a feed at shutdown: its open
// segment is aborted, so stream readers cut their responses short and no
// edge caches a truncated or early-ended copy, held part requests and
// waiters fail, direct-mode viewers are closed. From then on its URLs answer
// 404 as for any unknown feed (the browser client backs off and retries;
// what edges cached of its finished segments and parts stays correct). A
// later update for the name makes a new feed, opened mid-segment.
// Hub.OnRemove tells the owners of per-feed data kept outside the hub
// (the metric series labelled with the feed) that a feed was removed, so
// that they drop it; Feed.Gone tells them that a feed they hold was.
//
// Replicas. The byte caps and eviction depend only on the messages read,
// their order and timestamps, and the configuration, so replicas that read
// the same messages refuse and evict the same ones and hold the same
// states. Expiry depends on the local clock, but only of feeds without
// keys, and empty feeds decide nothing (they hold no place): replicas may
// list an empty feed for different lengths of time, and a viewer switching
// between them sees the same empty state or 404. A replica that starts
// later rebuilds from the last message per subject, which is not always
// what a running replica holds once a cap refused or evicted something
// (as with MaxKeys): it may hold keys of a feed the others evicted, or
// refuse what they hold. The caps are for abuse and mistakes; counted
// refusals and evictions are worth an alert.
//
// # Concurrency
//
// Hub and Feed methods are safe for concurrent use. Writers (Apply, Tick)
// serialise on the feed's mutex; Reload and Loaded exclude Apply (so each
// Apply folds into the live state or into one reload's staging state). Readers
// take no lock: Log.Since, Part and UpTo read an immutable view of the log
// published with one atomic store per change (a sub-slice of the
// append-only buffer, whose bytes below the returned length never change,
// the part boundaries recorded so far, and a channel that is closed, then
// replaced, on the next change: close-and-replace broadcast), and
// Feed.Direct returns the same kind of view of the direct-mode history
// (the recent update frames concatenated, their sequences, the feed's
// sequence), so a direct viewer writes DirectView.Since's sub-slice to its
// socket as it is. There is no per-reader queue and no per-reader
// encoding; a slow reader only falls behind in its own offset.
//
// The package imports no networking: the feed consumer calls Apply, the HTTP
// layer reads logs. Time comes from an injected Clock; Hub.Run closes parts
// and rotates with timers, and tests may call Hub.Tick with any time
// instead.
package segmenter
