package segmenter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"marquee/sse"
	"marquee/wire"
)

// The fuzzers below check segmenter's hand-written encoders against the
// public contract (package wire): whatever key, value, feed name, sequence,
// segment or time they are given that the segmenter accepts, the data they
// write is valid JSON that decodes strictly into the wire type (every field
// present once, no other field, nothing after the object) with the values
// that went in. The frame encoders are also decoded with the sse decoder.

// FuzzUpdateData checks updateData, for every key and value encodeUpdate
// accepts (FuzzEncodeUpdate checks what it refuses) and any prev.
func FuzzUpdateData(f *testing.F) {
	f.Add("nba.lal-bos", []byte(`{"home":101,"away":99}`), uint64(4712), uint64(4711), int64(1700000000123456789))
	f.Add("", []byte(nil), uint64(0), uint64(0), int64(0))
	f.Add(`q"uo\te`+"\x00\x1f\x7f", []byte(" [1, \"\\u2028\"]\t"), uint64(1<<64-1), uint64(1<<64-2), int64(-1))
	f.Add("k\u00e9\u2028", []byte("null"), uint64(1), uint64(1<<64-1), int64(-1<<63))
	f.Fuzz(func(t *testing.T, key string, value []byte, seq, prev uint64, ns int64) {
		u := Update{Key: key, Value: value, Seq: seq, Time: time.Unix(0, ns)}
		if _, err := encodeUpdate(u, prev); err != nil {
			return // refused: FuzzEncodeUpdate
		}
		data := updateData(nil, u, prev)
		var got wire.Update
		if err := decodeStrict(data, &got); err != nil {
			t.Fatalf("updateData(%+v, %d) = %s: %v", u, prev, data, err)
		}
		checkUpdate(t, data, got, u, prev, value)
	})
}

// FuzzEncodeUpdate checks the update frame: refused exactly when the value
// is not JSON or the key or value is not UTF-8 (validUpdate agreeing), otherwise one update event
// with the seq as its id and the update (prev included) as its data.
func FuzzEncodeUpdate(f *testing.F) {
	f.Add("AAPL", []byte(`{"price":187.5}`), uint64(12), uint64(9), int64(1700000000000000000))
	f.Add("k", []byte("{\r\n\"a\":\r1}\n"), uint64(3), uint64(2), int64(5))
	f.Add("k", []byte(`{"a":`), uint64(3), uint64(2), int64(5))
	f.Add("\xff", []byte(`{}`), uint64(3), uint64(0), int64(5))
	f.Add("k", []byte("\"\xed\xa0\x80\""), uint64(3), uint64(2), int64(5))
	f.Fuzz(func(t *testing.T, key string, value []byte, seq, prev uint64, ns int64) {
		u := Update{Key: key, Value: value, Seq: seq, Time: time.Unix(0, ns)}
		frame, err := encodeUpdate(u, prev)
		refuse := (len(value) > 0 && !json.Valid(value)) || !utf8.ValidString(key) || !utf8.Valid(value)
		if refuse != (err != nil) {
			t.Fatalf("encodeUpdate(%+v) error %v, want refused %v", u, err, refuse)
		}
		// A conflated update is checked by validUpdate and encoded later.
		if verr := validUpdate(u); (verr != nil) != refuse || (verr != nil && !errors.Is(verr, ErrInvalidValue)) {
			t.Fatalf("validUpdate(%+v) = %v, want refused %v", u, verr, refuse)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("encodeUpdate(%+v) error %v, not ErrInvalidValue", u, err)
			}
			return
		}
		ev := decodeFrame(t, frame)
		if ev.Type != wire.EventUpdate || ev.ID != strconv.FormatUint(seq, 10) {
			t.Fatalf("frame %q: event %q id %q, want %q id %d", frame, ev.Type, ev.ID, wire.EventUpdate, seq)
		}
		var got wire.Update
		if err := decodeStrict(ev.Data, &got); err != nil {
			t.Fatalf("frame %q: data %s: %v", frame, ev.Data, err)
		}
		// A client receives every line break of the data as LF; in valid
		// JSON, CR can only be whitespace between tokens.
		checkUpdate(t, ev.Data, got, u, prev, lfLineBreaks(value))
	})
}

func checkUpdate(t *testing.T, data []byte, got wire.Update, u Update, prev uint64, value []byte) {
	t.Helper()
	want := wire.Update{Key: u.Key, Seq: u.Seq, Prev: prev, Time: u.Time.UnixMilli(), Value: jsonValue(value)}
	if got.Key != want.Key || got.Seq != want.Seq || got.Prev != want.Prev || got.Time != want.Time || !bytes.Equal(got.Value, want.Value) {
		t.Fatalf("data %s decodes as %+v, want %+v", data, got, want)
	}
	if got.Deleted() != (len(u.Value) == 0 || string(want.Value) == "null") {
		t.Fatalf("data %s: Deleted() = %v for value %q", data, got.Deleted(), u.Value)
	}
}

// FuzzSnapshotData checks snapshotData and the snapshot frame for any feed
// name, segment, seq, time and entries the state can hold (every entry was
// accepted by encodeUpdate). entries is "key\x00value\x00key\x00value…".
func FuzzSnapshotData(f *testing.F) {
	f.Add("scores", int64(29466120), uint64(4711), int64(1767945600000000000), "nba.lal-bos\x00{\"home\":1}\x00nhl.tor-mtl\x00{\"x\":[1,2]}")
	f.Add("", int64(0), uint64(0), int64(0), "")
	f.Add("f\"\\\x01", int64(-1), uint64(1<<64-1), int64(-1), "a\x00 {}\r\n\x00b\x00\x00\"\x00[\"\\\"\"]")
	f.Fuzz(func(t *testing.T, feed string, n int64, seq uint64, ns int64, entries string) {
		if !utf8.ValidString(feed) {
			return // feed names are validated upstream ([A-Za-z0-9_.-])
		}
		state := map[string]json.RawMessage{}
		parts := strings.Split(entries, "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			k, v := parts[i], json.RawMessage(parts[i+1])
			if _, err := encodeUpdate(Update{Key: k, Value: v}, 0); err != nil || len(v) == 0 {
				continue // never in the state
			}
			state[k] = v
		}
		keys := slices.Sorted(maps.Keys(state))
		now := time.Unix(0, ns)
		want := wire.Snapshot{Feed: feed, Segment: n, Seq: seq, Time: now.UnixMilli(), Entries: map[string]json.RawMessage{}}

		data := snapshotData(nil, feed, n, seq, now, keys, state)
		var got wire.Snapshot
		if err := decodeStrict(data, &got); err != nil {
			t.Fatalf("snapshotData = %s: %v", data, err)
		}
		for k, v := range state {
			want.Entries[k] = jsonValue(v)
		}
		checkSnapshot(t, data, got, want)

		ev := decodeFrame(t, encodeSnapshot(data, seq))
		if ev.Type != wire.EventSnapshot || ev.ID != strconv.FormatUint(seq, 10) {
			t.Fatalf("snapshot frame: event %q id %q, want %q id %d", ev.Type, ev.ID, wire.EventSnapshot, seq)
		}
		got = wire.Snapshot{}
		if err := decodeStrict(ev.Data, &got); err != nil {
			t.Fatalf("snapshot frame data %s: %v", ev.Data, err)
		}
		for k, v := range state {
			want.Entries[k] = jsonValue(lfLineBreaks(v))
		}
		checkSnapshot(t, ev.Data, got, want)
	})
}

func checkSnapshot(t *testing.T, data []byte, got, want wire.Snapshot) {
	t.Helper()
	if got.Feed != want.Feed || got.Segment != want.Segment || got.Seq != want.Seq || got.Time != want.Time ||
		!maps.EqualFunc(got.Entries, want.Entries, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
		t.Fatalf("data %s decodes as %+v, want %+v", data, got, want)
	}
}

// FuzzEncodeNext checks the next frame: a next event without id whose data
// names the next segment and its URL.
func FuzzEncodeNext(f *testing.F) {
	f.Add("/v1/feeds", "scores", int64(29466121))
	f.Add("", "", int64(-1<<63))
	f.Add("/p\"\\", "f\x00\u2028", int64(1<<63-1))
	f.Fuzz(func(t *testing.T, prefix, feed string, n int64) {
		if !utf8.ValidString(prefix) || !utf8.ValidString(feed) {
			return // the prefix is configured and feed names are validated upstream
		}
		ev := decodeFrame(t, encodeNext(prefix, feed, n))
		if ev.Type != wire.EventNext || ev.ID != "" {
			t.Fatalf("next frame: event %q id %q, want %q without id", ev.Type, ev.ID, wire.EventNext)
		}
		var got wire.Next
		if err := decodeStrict(ev.Data, &got); err != nil {
			t.Fatalf("next data %s: %v", ev.Data, err)
		}
		if want := (wire.Next{Segment: n, URL: SegmentURL(prefix, feed, n)}); got != want {
			t.Fatalf("next data %s decodes as %+v, want %+v", ev.Data, got, want)
		}
	})
}

// decodeFrame decodes a frame that must hold exactly one event.
func decodeFrame(t *testing.T, frame []byte) sse.Event {
	t.Helper()
	dec := sse.NewDecoder(bytes.NewReader(frame))
	ev, err := dec.Next()
	if err != nil {
		t.Fatalf("frame %q: %v", frame, err)
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Fatalf("frame %q: more than one event (%v)", frame, err)
	}
	return ev
}

// decodeStrict decodes data into v, a pointer to a wire struct: valid JSON,
// one object with exactly the fields of v's type, each once, and nothing
// after it.
func decodeStrict(data []byte, v any) error {
	if !json.Valid(data) {
		return errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object (%v)", err)
	}
	names, err := topLevelNames(data)
	if err != nil {
		return err
	}
	if want := jsonFields(reflect.TypeOf(v).Elem()); !slices.Equal(slices.Sorted(slices.Values(names)), want) {
		return fmt.Errorf("fields %q, want each of %q once", names, want)
	}
	return nil
}

// topLevelNames returns the member names of the JSON object data, in order,
// duplicates included.
func topLevelNames(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object (%v)", err)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// jsonFields returns the sorted JSON names of struct type t's fields.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// jsonValue is how a raw value decodes into json.RawMessage: null when
// empty, else without the whitespace around it.
func jsonValue(v []byte) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage("null")
	}
	return bytes.Trim(v, " \t\r\n")
}

// lfLineBreaks turns CRLF and CR into LF, as an SSE client receives data.
func lfLineBreaks(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

// TestDecodeStrict: the fuzzers' checker refuses what a loose decoder
// would let through.
func TestDecodeStrict(t *testing.T) {
	for _, tc := range []struct {
		data string
		ok   bool
	}{
		{`{"segment":1,"url":"/s/1"}`, true},
		{` {"url":"/s/1","segment":1} `, true},
		{`{"segment":1}`, false},                         // missing field
		{`{"segment":1,"url":"/s/1","x":0}`, false},      // unknown field
		{`{"segment":1,"url":"/s/1","url":"/s"}`, false}, // duplicate field
		{`{"segment":1,"url":"/s/1"}{}`, false},          // trailing data
		{`{"segment":1,"url":"/s/1"`, false},             // truncated
		{`{"segment":"1","url":"/s/1"}`, false},          // wrong type
	} {
		var n wire.Next
		if err := decodeStrict([]byte(tc.data), &n); (err == nil) != tc.ok {
			t.Errorf("decodeStrict(%s) = %v, want ok %v", tc.data, err, tc.ok)
		}
	}
}
