package core_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"marquee/internal/testenv"
	"marquee/sse"
	"marquee/wire"
)

// TestRestartWithAllowListOpensFullSnapshot is the regression test of the
// restart bug: with an allow-list (MARQUEE_FEEDS) and JetStream, the feeds
// were registered before the stored state was replayed and their current
// segment opened with an empty snapshot, which an edge then cached for the
// rest of the segment. After a restart on the same store, the first event of
// every allow-listed feed's current segment must hold every stored key.
func TestRestartWithAllowListOpensFullSnapshot(t *testing.T) {
	n := testenv.StartNATS(t)
	feeds := []string{"prices", "scores"}
	o := testenv.StartOrigin(t, n, testenv.Options{SegmentLength: 10 * time.Second, Feeds: feeds})
	for _, f := range feeds {
		for i := range 12 {
			n.Publish("feeds."+f+".k"+strconv.Itoa(i), fmt.Sprintf(`{"i":%d}`, i))
		}
	}
	want := map[string]uint64{}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, f := range feeds {
			var s wire.Snapshot
			testenv.GetJSON(t, o.URL+"/v1/feeds/"+f+"/snapshot", &s)
			if len(s.Entries) != 12 {
				return fmt.Errorf("%s: %d entries", f, len(s.Entries))
			}
			want[f] = s.Seq
		}
		return nil
	})

	o.Restart()
	for _, f := range feeds {
		d := o.Descriptor(f)
		resp, err := http.Get(o.URL + d.URL)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := sse.NewDecoder(resp.Body).Next()
		resp.Body.Close()
		if err != nil || ev.Type != "snapshot" {
			t.Fatalf("%s: first event %q: %v", f, ev.Type, err)
		}
		var s wire.Snapshot
		if err := json.Unmarshal(ev.Data, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Entries) != 12 || s.Seq != want[f] || ev.ID != strconv.FormatUint(want[f], 10) {
			t.Errorf("%s: segment %d opened with %d entries at seq %d (id %s), want 12 at %d", f, d.Segment, len(s.Entries), s.Seq, ev.ID, want[f])
		}
	}
}
