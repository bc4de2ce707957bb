package segmenter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"marquee/sse"
)

// Frame encoding. Every frame is encoded once, when it is appended, and then
// shared by all readers. Keys and feed names are validated upstream
// ([A-Za-z0-9_.-]), but appendJSONString escapes anyway so that the
// segmenter never emits broken JSON whatever its caller passes.

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendValue(b []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(b, "null"...)
	}
	return append(b, v...)
}

// updateData is the JSON of an update event, prev being the feed's highest
// sequence before it (wire.Update.Prev):
// {"key":"k","seq":12,"prev":11,"time":1700000000000,"value":{...}} (value null = deleted).
func updateData(b []byte, u Update, prev uint64) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, u.Key)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, u.Seq, 10)
	b = append(b, `,"prev":`...)
	b = strconv.AppendUint(b, prev, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, u.Time.UnixMilli(), 10)
	b = append(b, `,"value":`...)
	b = appendValue(b, u.Value)
	return append(b, '}')
}

// validUpdate refuses what encodeUpdate refuses, without encoding: a value
// that is not JSON, invalid UTF-8 in the key or value.
func validUpdate(u Update) error {
	if len(u.Value) > 0 && !json.Valid(u.Value) {
		return ErrInvalidValue
	}
	if !utf8.ValidString(u.Key) || !utf8.Valid(u.Value) {
		return fmt.Errorf("%w: %w", ErrInvalidValue, sse.ErrInvalidData)
	}
	return nil
}

// encodeUpdate encodes the update event of u; prev is the feed's highest
// sequence before u.
func encodeUpdate(u Update, prev uint64) ([]byte, error) {
	if len(u.Value) > 0 && !json.Valid(u.Value) {
		return nil, ErrInvalidValue
	}
	data := updateData(make([]byte, 0, 80+len(u.Key)+len(u.Value)), u, prev)
	frame, err := sse.AppendEvent(make([]byte, 0, len(data)+48), sse.Event{
		ID:   strconv.FormatUint(u.Seq, 10),
		Type: "update",
		Data: data,
	})
	if err != nil { // invalid UTF-8 in the key or value
		return nil, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return frame, nil
}

// snapshotData is the JSON of a snapshot:
// {"feed":"f","segment":n,"seq":s,"time":ms,"entries":{"k":{...},...}} with keys sorted.
// In a segment log, t is the segment's start.
func snapshotData(b []byte, feed string, n int64, seq uint64, t time.Time, keys []string, entries map[string]json.RawMessage) []byte {
	b = append(b, `{"feed":`...)
	b = appendJSONString(b, feed)
	b = append(b, `,"segment":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, t.UnixMilli(), 10)
	b = append(b, `,"entries":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendValue(b, entries[k])
	}
	return append(b, "}}"...)
}

func encodeSnapshot(data []byte, seq uint64) []byte {
	frame, err := sse.AppendEvent(make([]byte, 0, len(data)+48), sse.Event{
		ID:   strconv.FormatUint(seq, 10),
		Type: "snapshot",
		Data: data,
	})
	if err != nil {
		panic("segmenter: encode snapshot: " + err.Error())
	}
	return frame
}

// SegmentURL returns the URL path of segment n of feed.
func SegmentURL(prefix, feed string, n int64) string {
	return prefix + "/" + feed + "/segments/" + strconv.FormatInt(n, 10)
}

func encodeNext(prefix, feed string, n int64) []byte {
	b := append([]byte(`{"segment":`), strconv.FormatInt(n, 10)...)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, SegmentURL(prefix, feed, n))
	b = append(b, '}')
	frame, err := sse.AppendEvent(nil, sse.Event{Type: "next", Data: b})
	if err != nil {
		panic("segmenter: encode next: " + err.Error())
	}
	return frame
}

var keepaliveFrame = sse.AppendComment(nil, "keepalive")
