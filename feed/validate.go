package feed

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"marquee/segmenter"
)

// Reason is why a message was dropped. Every reason is a label value of
// marquee_feed_messages_rejected_total, pre-created with 0.
type Reason uint8

// The reasons. ReasonNone means the message was accepted.
const (
	ReasonNone         Reason = iota
	ReasonTooLarge            // body above Config.MaxMessageBytes
	ReasonBadSubject          // not "<prefix>.<feed>.<key...>"
	ReasonBadFeed             // feed name not [A-Za-z0-9_-]{1,64}
	ReasonBadKey              // key not [A-Za-z0-9_.-]{1,MaxKeyLen} or has an empty token
	ReasonBadJSON             // body is not valid UTF-8 JSON
	ReasonNotObject           // body is JSON but not an object
	ReasonUnknownFeed         // feed not in the Config.Feeds allow-list
	ReasonTooManyFeeds        // the sink refused a new feed (segmenter.ErrTooManyFeeds)
	ReasonTooManyKeys         // the sink refused a new key (segmenter.ErrTooManyKeys)
	ReasonTooManyBytes        // the sink refused to grow a feed's state, or all feeds', past a byte cap (segmenter.ErrTooManyBytes)
	ReasonNoFeed              // a delete for a feed the sink does not have (segmenter.ErrUnknownFeed): nothing to delete, and deletes make no feed; expected at start-up
	ReasonDuplicate           // the sink already had this sequence (segmenter.ErrDuplicate); expected after reconnects
	ReasonBadMetadata         // a JetStream message without parsable metadata
	ReasonSlowConsumer        // dropped by the core NATS client because the subscription buffer was full
	ReasonSinkError           // any other error from the sink

	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:         "none",
	ReasonTooLarge:     "too_large",
	ReasonBadSubject:   "bad_subject",
	ReasonBadFeed:      "bad_feed",
	ReasonBadKey:       "bad_key",
	ReasonBadJSON:      "bad_json",
	ReasonNotObject:    "not_object",
	ReasonUnknownFeed:  "unknown_feed",
	ReasonTooManyFeeds: "too_many_feeds",
	ReasonTooManyKeys:  "too_many_keys",
	ReasonTooManyBytes: "too_many_bytes",
	ReasonNoFeed:       "no_feed",
	ReasonDuplicate:    "duplicate",
	ReasonBadMetadata:  "bad_metadata",
	ReasonSlowConsumer: "slow_consumer",
	ReasonSinkError:    "sink_error",
}

// String returns the metric label of r, e.g. "bad_json".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Reasons returns every rejection reason (all but ReasonNone).
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := ReasonNone + 1; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Limits are the rules Parse applies. Zero fields take the defaults of
// Config: prefix "feeds", 65536 bytes, 128 bytes of key.
type Limits struct {
	SubjectPrefix   string   // first token(s) of the subject
	MaxMessageBytes int      // largest body, in bytes
	MaxKeyLen       int      // longest key, in bytes
	Feeds           []string // allow-list of feed names; empty allows any
}

func (l Limits) withDefaults() Limits {
	if l.SubjectPrefix == "" {
		l.SubjectPrefix = "feeds"
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 64 << 10
	}
	if l.MaxKeyLen <= 0 {
		l.MaxKeyLen = 128
	}
	return l
}

// Parse validates one message on subject "<prefix>.<feed>.<key...>" and
// returns its feed and update, or the reason to drop it. The key is every
// token after the feed, joined with '.'. An empty body deletes the key
// (u.Value == nil); any other body must be a JSON object and is returned
// compacted, so that it is one line in an SSE stream. Seq and Time are left
// for the caller. Parse is pure and safe for concurrent use.
func Parse(subject string, data []byte, lim Limits) (feed string, u segmenter.Update, reason Reason) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxMessageBytes {
		return "", u, ReasonTooLarge
	}
	rest, ok := strings.CutPrefix(subject, lim.SubjectPrefix)
	if !ok || len(rest) == 0 || rest[0] != '.' {
		return "", u, ReasonBadSubject
	}
	feed, key, ok := strings.Cut(rest[1:], ".")
	if !ok {
		return "", u, ReasonBadSubject
	}
	if !ValidFeedName(feed) {
		return "", u, ReasonBadFeed
	}
	if len(lim.Feeds) > 0 && !slices.Contains(lim.Feeds, feed) {
		return "", u, ReasonUnknownFeed
	}
	if !ValidKey(key, lim.MaxKeyLen) {
		return "", u, ReasonBadKey
	}
	u.Key = key
	if len(data) == 0 {
		return feed, u, ReasonNone
	}
	if !utf8.Valid(data) || !json.Valid(data) {
		return "", segmenter.Update{}, ReasonBadJSON
	}
	if data[firstNonSpace(data)] != '{' {
		return "", segmenter.Update{}, ReasonNotObject
	}
	var buf bytes.Buffer
	buf.Grow(len(data))
	if err := json.Compact(&buf, data); err != nil {
		return "", segmenter.Update{}, ReasonBadJSON // unreachable after json.Valid
	}
	u.Value = buf.Bytes()
	return feed, u, ReasonNone
}

// firstNonSpace returns the index of the first byte of data that is not JSON
// white space. data must be valid JSON, so there is one.
func firstNonSpace(data []byte) int {
	for i, b := range data {
		switch b {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return 0
}

// ValidFeedName reports whether name is a feed name: [A-Za-z0-9_-]{1,64}.
func ValidFeedName(name string) bool {
	if len(name) == 0 || len(name) > MaxFeedNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return false
		}
	}
	return true
}

// ValidKey reports whether key is a valid key: 1..maxLen bytes of
// [A-Za-z0-9_.-] with no empty dot-separated token.
func ValidKey(key string, maxLen int) bool {
	if len(key) == 0 || len(key) > maxLen {
		return false
	}
	prevDot := true // a leading '.' is an empty token
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		if !nameByte(c) {
			return false
		}
		prevDot = false
	}
	return !prevDot // a trailing '.' is an empty token
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
