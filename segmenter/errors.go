package segmenter

import (
	"errors"
	"strconv"
)

var (
	// ErrTooManyFeeds is returned by Apply when a new feed would exceed
	// Config.MaxFeeds and no feed may give up its place (see
	// Config.FeedIdleEvict).
	ErrTooManyFeeds = errors.New("too many feeds")
	// ErrTooManyKeys is returned by Apply when a new key would exceed Config.MaxKeys.
	ErrTooManyKeys = errors.New("too many keys in feed")
	// ErrTooManyBytes is returned (wrapped in a *BytesError naming the
	// cap) by Apply when an update would grow a feed's state above
	// Config.MaxFeedBytes, or the state of all feeds above
	// Config.MaxStateBytes.
	ErrTooManyBytes = errors.New("too many bytes of state")
	// ErrDuplicate is returned by Apply for an update whose sequence was already applied.
	ErrDuplicate = errors.New("duplicate or old sequence")
	// ErrUnknownFeed is returned by lookups of a feed that does not exist,
	// and by Apply for a delete in a feed that does not exist: there is
	// nothing to delete, and a delete creates no feed.
	ErrUnknownFeed = errors.New("unknown feed")
	// ErrInvalidValue is returned by Apply for a value that is not valid
	// JSON or a key or value that cannot be encoded (invalid UTF-8).
	ErrInvalidValue = errors.New("value cannot be encoded")
	// ErrClosed is returned after the hub was closed.
	ErrClosed = errors.New("hub closed")

	// errGone is returned by a feed's apply after the feed was removed
	// from the hub (evicted or expired): Hub.Apply looks the name up again.
	errGone = errors.New("feed removed")
)

// BytesError is the refusal of an update by a byte cap. It wraps
// ErrTooManyBytes.
type BytesError struct {
	Feed  string // the feed the update was for
	Var   string // the cap: "MARQUEE_MAX_FEED_BYTES" or "MARQUEE_MAX_STATE_BYTES"
	Limit int64  // the cap's value, in bytes
	Would int64  // what the feed's (or all feeds') state would have held, in bytes
}

func (e *BytesError) Error() string {
	what := "feed " + e.Feed
	if e.Var == varStateBytes {
		what = "all feeds (update for " + e.Feed + ")"
	}
	return "state of " + what + " would be " + strconv.FormatInt(e.Would, 10) + " bytes, above " +
		e.Var + "=" + strconv.FormatInt(e.Limit, 10) + ": " + ErrTooManyBytes.Error()
}

// Unwrap returns ErrTooManyBytes.
func (e *BytesError) Unwrap() error { return ErrTooManyBytes }

const (
	varFeedBytes  = "MARQUEE_MAX_FEED_BYTES"
	varStateBytes = "MARQUEE_MAX_STATE_BYTES"
)
