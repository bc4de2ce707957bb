package segmenter

import (
	"encoding/json"
	"time"
)

// Update is one validated change to a feed: the latest value of one key, or
// its deletion. The feed consumer builds it; the segmenter folds it into the
// feed's state and appends it, encoded once, to the open segment's log.
type Update struct {
	// Key is the entry's key within the feed, e.g. "nba.lal-bos". Already
	// validated by the caller ([A-Za-z0-9_.-], 1..MaxKeyLen bytes).
	Key string
	// Value is a JSON object. Nil (or empty) deletes the key.
	Value json.RawMessage
	// Seq is the event id: the JetStream stream sequence, or a process-local
	// counter with core NATS. Updates with Seq not above the feed's highest
	// applied sequence are ignored as duplicates (redeliveries).
	Seq uint64
	// Time is when the message was published: the JetStream timestamp, set
	// once by the stream leader, or with core NATS when it was received. It
	// decides the part (and segment) the update goes into, so that every
	// replica puts it in the same one (see the package documentation).
	Time time.Time
}

// Sink receives validated updates. *Hub implements it.
type Sink interface {
	// Apply folds u into the named feed, creating the feed if needed
	// (not for a delete: ErrUnknownFeed). It returns ErrTooManyFeeds,
	// ErrTooManyKeys or ErrTooManyBytes (wrapped) when a cap is hit,
	// ErrDuplicate when u.Seq is not above the feed's highest sequence.
	Apply(feed string, u Update) error
	// Loaded tells the sink that the replay of stored state is complete
	// (with core NATS: that the subscription is in place), the first one
	// or the one a Reload announced. Idempotent.
	Loaded()
	// Reload tells the sink that the source is about to replay the whole
	// stored state again: it resumed past discarded messages, or the
	// stream was recreated and sequences restarted. The Applies up to the
	// next Loaded rebuild every feed's state from empty (sequence 0, so
	// restarted sequences are accepted); at Loaded that state replaces the
	// old one and viewers get a snapshot of it at once. Calling Reload
	// again before Loaded starts the replay over.
	Reload()
}
