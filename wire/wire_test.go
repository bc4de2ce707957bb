package wire

import (
	"encoding/json"
	"testing"
	"time"
)

// TestFieldNames pins the JSON names of every public body and payload: a
// renamed tag is a breaking change of the public API and must show up here.
func TestFieldNames(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{FeedList{Feeds: []FeedRef{{Feed: "f", URL: "/v1/feeds/f"}}, ServerTime: 1},
			`{"feeds":[{"feed":"f","url":"/v1/feeds/f"}],"server_time":1}`},
		{Descriptor{},
			`{"feed":"","segment_length":0,"part_length":0,"keepalive":0,"segment":0,"url":"","segment_start":0,"segment_end":0,` +
				`"next_url":"","direct_url":"","snapshot_url":"","server_time":0,"seq":0,"keys":0,"modes":null,"mode":"",` +
				`"parts":0,"part":0,"part_url":"","upto_url":""}`},
		{Snapshot{Feed: "f", Segment: 2, Seq: 3, Time: 4, Entries: map[string]json.RawMessage{"k": json.RawMessage(`{"x":1}`)}},
			`{"feed":"f","segment":2,"seq":3,"time":4,"entries":{"k":{"x":1}}}`},
		{Update{Key: "k", Seq: 3, Prev: 2, Time: 4, Value: json.RawMessage(`{"x":1}`)}, `{"key":"k","seq":3,"prev":2,"time":4,"value":{"x":1}}`},
		{Update{Key: "k", Seq: 3, Time: 4}, `{"key":"k","seq":3,"prev":0,"time":4,"value":null}`},
		{Next{Segment: 5, URL: "/v1/feeds/f/segments/5"}, `{"segment":5,"url":"/v1/feeds/f/segments/5"}`},
		{Error{Message: "no such feed", Code: 404}, `{"error":"no such feed","code":404}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.v, got, tc.want)
		}
	}
}

func TestDescriptorHelpers(t *testing.T) {
	d := Descriptor{
		SegmentLength: 60, PartLength: 0.5, Keepalive: 15,
		URL:     "/v1/feeds/scores/segments/29466120",
		PartURL: "/v1/feeds/scores/segments/{n}/parts/{k}",
		UptoURL: "/v1/feeds/scores/segments/{n}/upto/{k}",
	}
	if got, want := d.SegmentDuration(), time.Minute; got != want {
		t.Errorf("SegmentDuration = %v, want %v", got, want)
	}
	if got, want := d.PartDuration(), 500*time.Millisecond; got != want {
		t.Errorf("PartDuration = %v, want %v", got, want)
	}
	if got, want := d.KeepaliveDuration(), 15*time.Second; got != want {
		t.Errorf("KeepaliveDuration = %v, want %v", got, want)
	}
	if got, want := d.SegmentPath(7), "/v1/feeds/scores/segments/7"; got != want {
		t.Errorf("SegmentPath = %q, want %q", got, want)
	}
	if got, want := d.PartPath(7, 3), "/v1/feeds/scores/segments/7/parts/3"; got != want {
		t.Errorf("PartPath = %q, want %q", got, want)
	}
	if got, want := d.UptoPath(7, 3), "/v1/feeds/scores/segments/7/upto/3"; got != want {
		t.Errorf("UptoPath = %q, want %q", got, want)
	}
}

func TestUpdateDeleted(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{{"", true}, {"null", true}, {"{}", false}, {`{"x":null}`, false}} {
		if got := (Update{Value: json.RawMessage(tc.value)}).Deleted(); got != tc.want {
			t.Errorf("Deleted(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
	var u Update
	if err := json.Unmarshal([]byte(`{"key":"k","seq":1,"time":2,"value":null}`), &u); err != nil || !u.Deleted() {
		t.Errorf("decoded null value: deleted %v, err %v", u.Deleted(), err)
	}
}
