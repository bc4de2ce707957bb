package wire

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event types of a segment, part or direct-mode stream (the SSE "event"
// field).
const (
	// EventSnapshot carries a [Snapshot]: the state at a segment's start (or,
	// in direct mode, when the viewer joined). Its event id is its Seq.
	EventSnapshot = "snapshot"
	// EventUpdate carries an [Update]. Its event id is its Seq.
	EventUpdate = "update"
	// EventNext carries a [Next] and ends a segment. It has no event id.
	EventNext = "next"
)

// Delivery modes, as [Descriptor.Modes] and [Descriptor.Mode] name them.
const (
	ModeStream = "stream" // segments, each followed by the one its next event names
	ModeParts  = "parts"  // upto/{k} of the part in progress, then parts/{k+1}, …
	ModeDirect = "direct" // one uncached stream, resumed with Last-Event-ID
)

// FeedList is the body of GET /v1/feeds.
type FeedList struct {
	// Feeds are the feeds the origin serves, sorted by name.
	Feeds []FeedRef `json:"feeds"`
	// ServerTime is when the origin answered, unix ms.
	ServerTime int64 `json:"server_time"`
}

// FeedRef names one feed of a [FeedList].
type FeedRef struct {
	// Feed is the feed's name.
	Feed string `json:"feed"`
	// URL is the path of the feed's [Descriptor], e.g. "/v1/feeds/scores".
	// Empty (left out) for a protected feed: its descriptor's path holds a
	// token, {URL prefix}/{feed}/t/{token}, which the list cannot give.
	URL string `json:"url,omitempty"`
	// Protected is true when the feed needs a token (MARQUEE_PROTECTED_FEEDS).
	Protected bool `json:"protected,omitempty"`
}

// Descriptor is the body of GET /v1/feeds/{feed}: what a client needs to
// follow the feed in any mode. Paths are relative to the origin (or edge).
type Descriptor struct {
	// Feed is the feed's name.
	Feed string `json:"feed"`
	// SegmentLength is the length of a segment, in seconds.
	SegmentLength float64 `json:"segment_length"`
	// PartLength is the length of a part, in seconds.
	PartLength float64 `json:"part_length"`
	// Keepalive is the longest silence within a stream, in seconds: a
	// keepalive comment is written when nothing else was.
	Keepalive float64 `json:"keepalive"`
	// Segment is the index of the segment in progress at ServerTime.
	Segment int64 `json:"segment"`
	// URL is the path of segment Segment.
	URL string `json:"url"`
	// SegmentStart and SegmentEnd bound segment Segment, unix ms.
	SegmentStart int64 `json:"segment_start"`
	SegmentEnd   int64 `json:"segment_end"`
	// NextURL is the path of segment Segment+1.
	NextURL string `json:"next_url"`
	// DirectURL is the path of the feed's direct-mode stream.
	DirectURL string `json:"direct_url"`
	// SnapshotURL is the path of the feed's [Snapshot] as JSON.
	SnapshotURL string `json:"snapshot_url"`
	// ServerTime is when the origin answered, unix ms. An edge may serve
	// the descriptor up to its max-age (1 s) later.
	ServerTime int64 `json:"server_time"`
	// Seq is the highest sequence folded into the feed's state.
	Seq uint64 `json:"seq"`
	// Keys is the number of keys the feed holds.
	Keys int `json:"keys"`
	// Modes are the delivery modes the origin serves (ModeStream, ModeParts,
	// ModeDirect).
	Modes []string `json:"modes"`
	// Mode is the mode clients should use by default (MARQUEE_CLIENT_MODE).
	Mode string `json:"mode"`
	// Parts is the number of parts per segment.
	Parts int `json:"parts"`
	// Part is the first part of segment Segment a parts-mode viewer joins
	// at (through UptoURL): the part in progress at ServerTime, or a later
	// one on an origin whose copy of the segment starts later (it opened
	// the segment mid-way: it just started, or the feed is new). Part ==
	// Parts when that origin serves no part of segment Segment: the viewer
	// joins at part 0 of segment Segment+1.
	Part int `json:"part"`
	// PartURL is the path template of a part: {n} the segment, {k} the
	// part (see PartPath).
	PartURL string `json:"part_url"`
	// UptoURL is the path template of a segment's log from its start to the
	// end of part {k} of segment {n} (see UptoPath).
	UptoURL string `json:"upto_url"`
	// Conflate is the feed's per-key conflation interval in seconds
	// (MARQUEE_CONFLATE): each segment holds at most one update per key per
	// interval, the latest of it. Absent when the feed is not conflated.
	Conflate float64 `json:"conflate,omitempty"`
	// Protected is true when the feed needs a token: every path above then
	// holds the token the descriptor was fetched with, and the paths in
	// the segments' next events (shared by every window) do not: a client
	// inserts its current token after the feed's name
	// (.../{feed}/segments/N → .../{feed}/t/{token}/segments/N).
	Protected bool `json:"protected,omitempty"`
	// TokenExpires is when the token in the paths above stops being valid,
	// unix ms (protected feeds only). A client fetches a new one before.
	TokenExpires int64 `json:"token_expires,omitempty"`
}

// SegmentDuration returns SegmentLength as a duration.
func (d Descriptor) SegmentDuration() time.Duration { return seconds(d.SegmentLength) }

// PartDuration returns PartLength as a duration.
func (d Descriptor) PartDuration() time.Duration { return seconds(d.PartLength) }

// KeepaliveDuration returns Keepalive as a duration.
func (d Descriptor) KeepaliveDuration() time.Duration { return seconds(d.Keepalive) }

// SegmentPath returns the path of segment n: URL with its last element
// replaced by n.
func (d Descriptor) SegmentPath(n int64) string {
	i := strings.LastIndexByte(d.URL, '/')
	return d.URL[:i+1] + strconv.FormatInt(n, 10)
}

// PartPath returns the path of part k of segment n (PartURL expanded).
func (d Descriptor) PartPath(n int64, k int) string { return expand(d.PartURL, n, k) }

// UptoPath returns the path of segment n up to the end of part k (UptoURL
// expanded).
func (d Descriptor) UptoPath(n int64, k int) string { return expand(d.UptoURL, n, k) }

func expand(tmpl string, n int64, k int) string {
	return strings.NewReplacer("{n}", strconv.FormatInt(n, 10), "{k}", strconv.Itoa(k)).Replace(tmpl)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Snapshot is the data of a snapshot event and the body of GET
// /v1/feeds/{feed}/snapshot: a feed's whole state.
type Snapshot struct {
	// Feed is the feed's name.
	Feed string `json:"feed"`
	// Segment is the segment the snapshot opens (for the JSON body: the
	// segment in progress).
	Segment int64 `json:"segment"`
	// Seq is the highest sequence folded into Entries.
	Seq uint64 `json:"seq"`
	// Time is unix ms. In a segment it is the start of segment Segment, a
	// value every replica agrees on (also for the snapshot an origin writes
	// into the open segment when it reloads state). For the JSON body and
	// in direct mode: when the origin answered, origin clock.
	Time int64 `json:"time"`
	// Entries are the feed's keys and their latest values (JSON objects).
	Entries map[string]json.RawMessage `json:"entries"`
}

// Update is the data of an update event: one key's new value.
type Update struct {
	// Key is the entry's key within the feed, e.g. "nba.lal-bos".
	Key string `json:"key"`
	// Seq is the update's sequence. A client applies an update only when
	// Seq is above the sequence it holds.
	Seq uint64 `json:"seq"`
	// Prev is the feed's highest sequence before this update: the Seq of
	// the feed's previous update, or the id of the snapshot it follows.
	// Every applied message writes an update (a delete of an absent key
	// too), so a client holding sequence s has missed something exactly
	// when Prev > s; it then re-joins (a snapshot, or upto in parts mode).
	// Prev < s is normal after a duplicate and is not a gap. In a feed
	// conflated per key (MARQUEE_CONFLATE) only the latest update of a key
	// per interval is written, and Prev is the Seq of the update written
	// before it (or the snapshot's id): the same rule holds.
	Prev uint64 `json:"prev"`
	// Time is when the update was published, unix ms: the JetStream message
	// timestamp, or with core NATS when the origin received it.
	Time int64 `json:"time"`
	// Value is the key's new value, a JSON object; null means the key was
	// deleted.
	Value json.RawMessage `json:"value"`
}

// Deleted reports whether the update deletes its key (Value null or absent).
func (u Update) Deleted() bool { return len(u.Value) == 0 || string(u.Value) == "null" }

// Next is the data of a next event, the last event of a segment.
type Next struct {
	// Segment is the index of the next segment.
	Segment int64 `json:"segment"`
	// URL is its path.
	URL string `json:"url"`
}

// Error is the body of every error response (4xx and 5xx, never cached).
type Error struct {
	// Message says what was wrong, for a person; it never holds the cause
	// the origin logged.
	Message string `json:"error"`
	// Code is the HTTP status code.
	Code int `json:"code"`
}
