package segmenter

import "errors"

var (
	// ErrTooManyFeeds is returned by Apply when a new feed would exceed Config.MaxFeeds.
	ErrTooManyFeeds = errors.New("too many feeds")
	// ErrTooManyKeys is returned by Apply when a new key would exceed Config.MaxKeys.
	ErrTooManyKeys = errors.New("too many keys in feed")
	// ErrDuplicate is returned by Apply for an update whose sequence was already applied.
	ErrDuplicate = errors.New("duplicate or old sequence")
	// ErrUnknownFeed is returned by lookups of a feed that does not exist.
	ErrUnknownFeed = errors.New("unknown feed")
	// ErrInvalidValue is returned by Apply for a value that is not valid
	// JSON or a key or value that cannot be encoded (invalid UTF-8).
	ErrInvalidValue = errors.New("value cannot be encoded")
	// ErrClosed is returned after the hub was closed.
	ErrClosed = errors.New("hub closed")
)
